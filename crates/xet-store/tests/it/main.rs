//! The store's contract, run on every backend: the local directory always, and an
//! S3-compatible server when `XET_TEST_S3_ENDPOINT` names one (`.ci/run` starts one
//! with `scripts/s3-server.sh`; under CI its absence is a failure, not a skip).

mod suite;
