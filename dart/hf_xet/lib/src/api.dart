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

/// Process-wide setup of the native library: a singleton, as in the
/// flutter_rust_bridge package (`HfXet()` is always the same instance).
class HfXet {
  static final HfXet _instance = HfXet._internal();

  /// The one instance (for [huggingfaceHubVersion]).
  factory HfXet() => _instance;

  HfXet._internal();

  bool _initialized = false;
  bool _supported = false;
  String? _huggingfaceHubVersion;

  /// Whether [ensureInitialized] has succeeded. Typically you don't need this and can
  /// call [ensureInitialized] directly.
  static bool get initialized => _instance._initialized;

  /// Set this if running under `huggingface_hub`: it goes into the user agent of
  /// every later upload and download.
  set huggingfaceHubVersion(String? value) => _huggingfaceHubVersion = value;

  /// Whether hf_xet works in this environment: false until [ensureInitialized] has
  /// succeeded (it loads the native library), as in the flutter_rust_bridge package.
  static bool isSupported() => _instance._supported;

  /// Where the Hugging Face home directory is (the default cache lives under it);
  /// read on every upload and download. `null`: `HF_HOME` or `~/.cache/huggingface`,
  /// as the official client does. Can be set by [ensureInitialized].
  static String Function()? getHuggingfaceHome;

  /// The native library's version string.
  static String get nativeVersion => readCString(hf_xet_version());

  /// The user agent of uploads and downloads.
  static String get _userAgent {
    final hub = _instance._huggingfaceHubVersion;
    return hub == null ? 'hf_xet-dart/$packageVersion' : 'hf_xet-dart/$packageVersion; huggingface_hub/$hub';
  }

  /// Loads the native library and starts it (`hf_xet_init`), once: after a success
  /// later calls return true at once and change nothing.
  ///
  /// Uploads and downloads work without it. Returns whether it succeeded; with
  /// [throwOnFail] a failure is thrown instead (an [XetException], or the
  /// `ArgumentError` dart:ffi throws when the native library cannot be found), so
  /// that without it you can check whether hf_xet is supported here.
  /// [huggingfaceHubVersion] sets [HfXet.huggingfaceHubVersion]; [huggingfaceHome],
  /// if given, becomes [getHuggingfaceHome] on success.
  static Future<bool> ensureInitialized({
    bool throwOnFail = false,
    String? huggingfaceHubVersion,
    String Function()? huggingfaceHome,
  }) async {
    if (_instance._initialized) return true;
    if (huggingfaceHubVersion != null) _instance._huggingfaceHubVersion = huggingfaceHubVersion;
    final arena = Arena();
    try {
      final options = <String, Object?>{'userAgent': _userAgent};
      final home = (huggingfaceHome ?? getHuggingfaceHome)?.call();
      if (home != null) options['hfHome'] = home;
      check(hf_xet_init(arena.string(jsonEncode(options))), 'hf_xet_init');
      _instance._initialized = true;
      _instance._supported = true;
      if (huggingfaceHome != null) getHuggingfaceHome = huggingfaceHome;
    } catch (_) {
      if (throwOnFail) rethrow;
    } finally {
      arena.freeAll();
    }
    return _instance._initialized;
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
  o['userAgent'] = HfXet._userAgent;
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
