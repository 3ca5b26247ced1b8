/// Upload and download files with Hugging Face's Xet storage, through dart:ffi over
/// the Rust library `xet-ffi` (no Flutter required).
///
/// The API matches the flutter_rust_bridge `hf_xet` package ([uploadFiles],
/// [uploadBytes], [downloadFiles], [HfXet]) and adds SHA-256 in upload results,
/// cancellation ([XetCancelToken]), byte-range downloads
/// ([DartXetDownloadInfo.range]), progress as a stream ([uploadFilesWithProgress]
/// and friends) and typed errors ([XetException] and its subclasses).
library;

export 'src/api.dart'
    show
        HfXet,
        uploadFiles,
        uploadBytes,
        downloadFiles,
        uploadFilesWithProgress,
        uploadBytesWithProgress,
        downloadFilesWithProgress;
export 'src/errors.dart';
export 'src/operation.dart' show XetCancelToken, XetOperation;
export 'src/types.dart';
