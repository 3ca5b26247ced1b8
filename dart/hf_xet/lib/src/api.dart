import 'dart:async';
import 'dart:convert';
import 'dart:ffi';
import 'dart:typed_data';

import 'bindings.g.dart';
import 'errors.dart';
import 'native.dart';
import 'operation.dart';
import 'types.dart';

/// The package version, sent in the user agent.
const String packageVersion = '0.1.0';

/// Process-wide setup of the native library.
class HfXet {
  HfXet._();

  static bool _initialized = false;

  /// Whether [ensureInitialized] has succeeded.
  static bool get initialized => _initialized;

  /// Where the Hugging Face home directory is (the default cache lives under it);
  /// read on every upload and download. `null`: `HF_HOME` or `~/.cache/huggingface`,
  /// as the official client does.
  static String Function()? getHuggingfaceHome;

  /// Whether the native library can be loaded on this platform.
  static bool isSupported() {
    try {
      hf_xet_version();
      return true;
    } catch (_) {
      return false;
    }
  }

  /// The native library's version string.
  static String get nativeVersion => readCString(hf_xet_version());

  /// Loads the native library and sets its process-wide defaults (`hf_xet_init`).
  ///
  /// Optional: uploads and downloads work without it, with defaults. Calling it again
  /// replaces the defaults. Returns whether it succeeded; with [throwOnFail] a failure
  /// is thrown instead (an [XetException], or the `ArgumentError` dart:ffi throws when
  /// the native library cannot be found). [huggingfaceHubVersion] goes into the user
  /// agent; [huggingfaceHome] becomes [getHuggingfaceHome].
  static Future<bool> ensureInitialized({
    bool throwOnFail = false,
    String? huggingfaceHubVersion,
    String Function()? huggingfaceHome,
  }) async {
    if (huggingfaceHome != null) getHuggingfaceHome = huggingfaceHome;
    final arena = Arena();
    try {
      var agent = 'hf_xet-dart/$packageVersion';
      if (huggingfaceHubVersion != null) agent = '$agent; huggingface_hub/$huggingfaceHubVersion';
      final options = <String, Object?>{'userAgent': agent};
      final home = getHuggingfaceHome?.call();
      if (home != null) options['hfHome'] = home;
      check(hf_xet_init(arena.string(jsonEncode(options))), 'hf_xet_init');
      _initialized = true;
      return true;
    } catch (_) {
      if (throwOnFail) rethrow;
      return false;
    } finally {
      arena.freeAll();
    }
  }
}

Map<String, Object?> _sessionOptions({
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  bool refresh = false,
  String? repoType,
}) {
  final o = <String, Object?>{};
  if (endpoint != null) o['endpoint'] = endpoint;
  if (tokenInfo != null) {
    o['token'] = tokenInfo.$1;
    o['tokenExpiry'] = tokenInfo.$2.toInt();
  }
  if (refresh) o['refreshToken'] = true;
  final home = HfXet.getHuggingfaceHome?.call();
  if (home != null) o['hfHome'] = home;
  if (repoType != null) o['repoType'] = repoType;
  return o;
}

List<DartXetUploadInfo> _parseUpload(Map<String, Object?> r) => [
      for (final f in (r['files'] as List<Object?>).cast<Map<String, Object?>>())
        DartXetUploadInfo(
          hash: f['hash'] as String,
          fileSize: BigInt.from(f['size'] as int),
          sha256: f['sha256'] as String?,
        ),
    ];

List<String> _parseDownload(Map<String, Object?> r) => [
      for (final f in (r['files'] as List<Object?>).cast<Map<String, Object?>>()) f['path'] as String,
    ];

ProgressTracker? _uploadTracker(
  List<String> names,
  FutureOr<void> Function(DartTotalProgressUpdate, List<DartItemProgressUpdate>)? callback,
  void Function(DartTotalProgressUpdate)? sink,
) {
  if (callback == null && sink == null) return null;
  return ProgressTracker(names, (total, items, _) {
    sink?.call(total);
    // A Future from the callback is handed back: its failure fails the operation.
    return callback?.call(total, items);
  });
}

Future<List<DartXetUploadInfo>> _uploadFiles(
  List<String> filePaths,
  String? endpoint,
  (String, BigInt)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate, List<DartItemProgressUpdate>)? progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
  void Function(DartTotalProgressUpdate)? sink,
) async =>
    runOperation(
      options: _sessionOptions(
          endpoint: endpoint, tokenInfo: tokenInfo, refresh: tokenRefresher != null, repoType: repoType),
      tracker: _uploadTracker(filePaths, progressUpdater, sink),
      tokenRefresher: tokenRefresher,
      cancelToken: cancelToken,
      parse: _parseUpload,
      start: (options, progress, token, done, outOp, arena) => hf_xet_upload_files(
          options, arena.strings(filePaths), filePaths.length, progress, token, done, nullptr, outOp),
    );

Future<List<DartXetUploadInfo>> _uploadBytes(
  List<Uint8List> fileContents,
  String? endpoint,
  (String, BigInt)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate, List<DartItemProgressUpdate>)? progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
  void Function(DartTotalProgressUpdate)? sink,
) async =>
    runOperation(
      options: _sessionOptions(
          endpoint: endpoint, tokenInfo: tokenInfo, refresh: tokenRefresher != null, repoType: repoType),
      tracker: _uploadTracker([for (var i = 0; i < fileContents.length; i++) '$i'], progressUpdater, sink),
      tokenRefresher: tokenRefresher,
      cancelToken: cancelToken,
      parse: _parseUpload,
      start: (options, progress, token, done, outOp, arena) => hf_xet_upload_bytes(
          options,
          arena.buffers(fileContents),
          arena.sizes([for (final b in fileContents) b.length]),
          fileContents.length,
          progress,
          token,
          done,
          nullptr,
          outOp),
    );

Future<List<String>> _downloadFiles(
  List<DartXetDownloadInfo> files,
  String? endpoint,
  (String, BigInt)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(String fileName, DartTotalProgressUpdate, List<DartItemProgressUpdate>)? progressUpdater,
  XetCancelToken? cancelToken,
  void Function(DartTotalProgressUpdate)? sink,
) async {
  final names = [for (final f in files) f.destinationPath];
  final tracker = (progressUpdater == null && sink == null)
      ? null
      : ProgressTracker(names, (total, items, last) {
          sink?.call(total);
          return progressUpdater?.call(last, total, items);
        });
  final ranged = files.any((f) => f.range != null);
  // UINT64_MAX in range_starts[i] means "whole file" for that entry (ABI).
  const whole = -1;
  return runOperation(
    options: _sessionOptions(endpoint: endpoint, tokenInfo: tokenInfo, refresh: tokenRefresher != null),
    tracker: tracker,
    tokenRefresher: tokenRefresher,
    cancelToken: cancelToken,
    parse: _parseDownload,
    start: (options, progress, token, done, outOp, arena) => hf_xet_download_files(
      options,
      arena.strings([for (final f in files) f.hash]),
      arena.u64s([for (final f in files) f.fileSize.toInt()]),
      arena.strings(names),
      ranged ? arena.u64s([for (final f in files) f.range == null ? whole : f.range!.$1.toInt()]) : nullptr,
      ranged ? arena.u64s([for (final f in files) f.range == null ? 0 : f.range!.$2.toInt()]) : nullptr,
      files.length,
      progress,
      token,
      done,
      nullptr,
      outOp,
    ),
  );
}

/// Uploads files to the CAS at [endpoint] and returns their hashes and sizes.
///
/// [endpoint] is the CAS URL (the `casUrl` of the Hub's xet token endpoint); `null`
/// uses the embedded local store under the cache directory. [tokenInfo] is the
/// initial CAS token and its expiry (Unix seconds); [tokenRefresher] is called
/// whenever the library needs a fresh one (it may be async; if it throws, the upload
/// fails with [XetAuthException]). [progressUpdater] receives the totals and the item
/// updates since the previous call (item names are the paths); if it throws, or
/// returns a Future that fails, the upload is cancelled and fails with that error
/// (the result waits for the Futures it returns). [cancelToken] cancels the upload
/// ([XetCancelledException]). Failures are [XetException]s.
Future<List<DartXetUploadInfo>> uploadFiles({
  required List<String> filePaths,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
}) =>
    _uploadFiles(filePaths, endpoint, tokenInfo, tokenRefresher, progressUpdater, repoType, cancelToken, null);

/// Uploads in-memory buffers, like [uploadFiles] (item names are the indexes `"0"`,
/// `"1"`, ...). The buffers are copied before the call returns.
Future<List<DartXetUploadInfo>> uploadBytes({
  required List<Uint8List> fileContents,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
}) =>
    _uploadBytes(fileContents, endpoint, tokenInfo, tokenRefresher, progressUpdater, repoType, cancelToken, null);

/// Downloads files (whole, or the [DartXetDownloadInfo.range] of each) and returns
/// the written paths, in request order.
///
/// Files are written atomically. [progressUpdater] receives the path of the file
/// updated most recently, the totals, and the item updates since the previous call.
/// Other parameters as in [uploadFiles]. An unknown hash fails with
/// [XetNotFoundException], a range beyond the file with [XetRangeException].
Future<List<String>> downloadFiles({
  required List<DartXetDownloadInfo> files,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(String fileName, DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  XetCancelToken? cancelToken,
}) =>
    _downloadFiles(files, endpoint, tokenInfo, tokenRefresher, progressUpdater, cancelToken, null);

/// [uploadFiles], with progress as a [Stream] and a [XetOperation.cancel].
XetOperation<List<DartXetUploadInfo>> uploadFilesWithProgress({
  required List<String> filePaths,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
}) =>
    startWithStream(
        cancelToken,
        (token, sink) =>
            _uploadFiles(filePaths, endpoint, tokenInfo, tokenRefresher, progressUpdater, repoType, token, sink));

/// [uploadBytes], with progress as a [Stream] and a [XetOperation.cancel].
XetOperation<List<DartXetUploadInfo>> uploadBytesWithProgress({
  required List<Uint8List> fileContents,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  String? repoType,
  XetCancelToken? cancelToken,
}) =>
    startWithStream(
        cancelToken,
        (token, sink) =>
            _uploadBytes(fileContents, endpoint, tokenInfo, tokenRefresher, progressUpdater, repoType, token, sink));

/// [downloadFiles], with progress as a [Stream] and a [XetOperation.cancel].
XetOperation<List<String>> downloadFilesWithProgress({
  required List<DartXetDownloadInfo> files,
  String? endpoint,
  (String token, BigInt expiration)? tokenInfo,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  FutureOr<void> Function(String fileName, DartTotalProgressUpdate totalUpdate, List<DartItemProgressUpdate> itemUpdates)?
      progressUpdater,
  XetCancelToken? cancelToken,
}) =>
    startWithStream(cancelToken,
        (token, sink) => _downloadFiles(files, endpoint, tokenInfo, tokenRefresher, progressUpdater, token, sink));
