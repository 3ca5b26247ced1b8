//! Raw HTTP tests: the API, bad input, auth.
