import 'dart:async';
import 'dart:convert';
import 'dart:ffi';

import 'bindings.g.dart';
import 'errors.dart';
import 'native.dart';
import 'types.dart';

/// Cancels the operations it was passed to.
///
/// Give the same token to several calls to cancel them together. [cancel] calls
/// `hf_xet_cancel` on every running operation of the token; their futures then fail
/// with [XetCancelledException] (unless they had already finished). An operation
/// started with an already cancelled token fails at once with
/// [XetCancelledException] without starting.
class XetCancelToken {
  bool _cancelled = false;
  final _running = <int>{};

  /// Whether [cancel] was called.
  bool get isCancelled => _cancelled;

  /// Cancels every running operation started with this token, and later ones.
  void cancel() {
    if (_cancelled) return;
    _cancelled = true;
    for (final op in _running.toList()) {
      // HF_XET_ERR_UNKNOWN_HANDLE means it finished meanwhile: nothing to cancel.
      hf_xet_cancel(op);
    }
  }
}

/// A running upload or download: its progress as a stream, its result as a future.
///
/// [progress] is single-subscription and buffers until listened to; it ends before
/// [result] completes, with the operation's error if it fails. Each event carries the totals; per-item updates are given to
/// the `progressUpdater` callbacks of [uploadFiles] and friends.
class XetOperation<T> {
  /// Progress of the whole operation, in order; closes when the operation ends.
  final Stream<DartTotalProgressUpdate> progress;

  /// The operation's result, or its [XetException].
  final Future<T> result;

  final XetCancelToken _token;

  XetOperation._(this.progress, this.result, this._token);

  /// Cancels the operation: [result] fails with [XetCancelledException] unless it had
  /// already finished.
  void cancel() => _token.cancel();
}

/// Builds an [XetOperation] whose stream is fed by `start`'s progress sink.
XetOperation<T> startWithStream<T>(
  XetCancelToken? cancelToken,
  Future<T> Function(XetCancelToken token, void Function(DartTotalProgressUpdate) sink) start,
) {
  final token = cancelToken ?? XetCancelToken();
  final controller = StreamController<DartTotalProgressUpdate>();
  // The stream ends (with the error, if any) before [XetOperation.result] completes.
  // close() completes only once a listener got the done event, so it is awaited only
  // when someone listens: a caller who ignores the stream must still get the result.
  Future<void> end() {
    final listening = controller.hasListener;
    final closed = controller.close();
    return listening ? closed : Future<void>.value();
  }

  final result = start(token, controller.add).then((v) async {
    await end();
    return v;
  }, onError: (Object e, StackTrace st) async {
    controller.addError(e, st);
    await end();
    Error.throwWithStackTrace(e, st);
  });
  return XetOperation._(controller.stream, result, token);
}

/// Turns the library's cumulative scalar progress into the increments of
/// [DartTotalProgressUpdate] and [DartItemProgressUpdate].
class ProgressTracker {
  /// Names of the request's items, by index.
  final List<String> itemNames;

  /// Receives each total update with the item updates since the previous one; what
  /// it returns (the user callback's result) is handed back by [onNative] and [flush].
  final FutureOr<void> Function(DartTotalProgressUpdate total, List<DartItemProgressUpdate> items, String lastItem)
      emit;

  final _clock = Stopwatch()..start();
  var _total = BigInt.zero;
  var _processed = BigInt.zero;
  var _transferred = BigInt.zero;
  final _itemDone = <int, BigInt>{};
  // Item updates since the last emitted total, in first-update order.
  final _pending = <int, DartItemProgressUpdate>{};
  var _lastItem = -1;

  /// A tracker for a request with these item names.
  ProgressTracker(this.itemNames, this.emit);

  static final _unknown = BigInt.parse('ffffffffffffffff', radix: 16);

  String _name(int i) => i >= 0 && i < itemNames.length ? itemNames[i] : '#$i';

  /// One progress callback from the library (raw `uint64_t`s as Dart ints). Returns
  /// what [emit] returned, if it was called.
  FutureOr<void> onNative(int item, int processed, int total, int transferred) {
    final p = u64(processed);
    final t = u64(total);
    if (item >= 0) {
      final before = _itemDone[item] ?? BigInt.zero;
      final delta = p > before ? p - before : BigInt.zero;
      _itemDone[item] = p;
      _lastItem = item;
      final prev = _pending[item];
      _pending[item] = DartItemProgressUpdate(
        itemName: _name(item),
        totalBytes: t == _unknown ? (prev?.totalBytes ?? BigInt.zero) : t,
        bytesCompleted: p,
        bytesCompletionIncrement: (prev?.bytesCompletionIncrement ?? BigInt.zero) + delta,
      );
      return null;
    }
    return _emit(p, t == _unknown ? _total : t, u64(transferred));
  }

  FutureOr<void> _emit(BigInt processed, BigInt total, BigInt transferred) {
    final secs = _clock.elapsedMicroseconds / 1e6;
    final update = DartTotalProgressUpdate(
      totalBytes: total,
      totalBytesIncrement: total > _total ? total - _total : BigInt.zero,
      totalBytesCompleted: processed,
      totalBytesCompletionIncrement: processed > _processed ? processed - _processed : BigInt.zero,
      totalBytesCompletionRate: secs > 0 ? processed.toDouble() / secs : null,
      totalTransferBytes: transferred,
      totalTransferBytesIncrement: transferred > _transferred ? transferred - _transferred : BigInt.zero,
      totalTransferBytesCompleted: transferred,
      totalTransferBytesCompletionIncrement: transferred > _transferred ? transferred - _transferred : BigInt.zero,
      totalTransferBytesCompletionRate: secs > 0 ? transferred.toDouble() / secs : null,
    );
    _total = total;
    _processed = processed;
    _transferred = transferred;
    final items = _pending.values.toList();
    _pending.clear();
    return emit(update, items, _name(_lastItem < 0 ? 0 : _lastItem));
  }

  /// Emits item updates not yet followed by a total (at the end of the operation).
  FutureOr<void> flush() => _pending.isNotEmpty ? _emit(_processed, _total, _transferred) : null;
}

/// Starts one native operation and completes with its parsed result.
///
/// `start` receives the options JSON, the three callbacks (progress and token request
/// may be `nullptr`), the out-pointer for the operation id and an [Arena] for its
/// arguments; it returns the start call's code.
Future<T> runOperation<T>({
  required Map<String, Object?> options,
  required int Function(Pointer<Char> options, HfXetProgressFn progress, HfXetTokenRequestFn tokenRequest,
          HfXetDoneFn done, Pointer<Uint64> outOp, Arena arena)
      start,
  required T Function(Map<String, Object?> result) parse,
  ProgressTracker? tracker,
  FutureOr<DartTokenInfo> Function()? tokenRefresher,
  XetCancelToken? cancelToken,
}) {
  if (cancelToken != null && cancelToken.isCancelled) {
    return Future.error(const XetCancelledException('the cancel token was cancelled before the operation started'));
  }
  final completer = Completer<T>();
  var op = -1;
  Object? callbackError;
  StackTrace? callbackStack;
  // Futures returned by the progress callback, not yet complete: the result waits
  // for them, so that a late failure is not lost.
  final callbackFutures = <Future<void>>{};
  NativeCallable<HfXetProgressFnFunction>? progressCb;
  NativeCallable<HfXetTokenRequestFnFunction>? tokenCb;
  late final NativeCallable<HfXetDoneFnFunction> doneCb;

  void closeAll() {
    progressCb?.close();
    tokenCb?.close();
    doneCb.close();
  }

  // A progress callback that throws, or whose Future fails, stops the operation; its
  // error is the result. (After `done`, hf_xet_cancel just answers UNKNOWN_HANDLE.)
  void callbackFailed(Object e, StackTrace st, int opId) {
    if (callbackError != null) return;
    callbackError = e;
    callbackStack = st;
    hf_xet_cancel(opId);
  }

  void watch(FutureOr<void> r, int opId) {
    if (r is! Future<void>) return;
    late final Future<void> watched;
    watched = r.then<void>((_) {}, onError: (Object e, StackTrace st) => callbackFailed(e, st, opId)).whenComplete(
      () => callbackFutures.remove(watched),
    );
    callbackFutures.add(watched);
  }

  if (tracker != null) {
    progressCb = NativeCallable<HfXetProgressFnFunction>.listener(
        (Pointer<Void> _, int opId, int item, int processed, int total, int transferred, int deduped) {
      if (callbackError != null) return;
      try {
        watch(tracker.onNative(item, processed, total, transferred), opId);
      } catch (e, st) {
        callbackFailed(e, st, opId);
      }
    });
  }
  if (tokenRefresher != null) {
    tokenCb = NativeCallable<HfXetTokenRequestFnFunction>.listener((Pointer<Void> _, int opId, int requestId) {
      _answerTokenRequest(requestId, tokenRefresher);
    });
  }
  Future<void> finish(int opId, int code, String text) async {
    try {
      if (callbackError == null) watch(tracker?.flush(), opId);
    } catch (e, st) {
      callbackFailed(e, st, opId);
    }
    while (callbackFutures.isNotEmpty) {
      await Future.wait(callbackFutures.toList());
    }
    if (callbackError != null) {
      completer.completeError(callbackError!, callbackStack);
    } else if (code != HF_XET_OK) {
      completer.completeError(XetException.fromCode(code, text));
    } else {
      try {
        completer.complete(parse(jsonDecode(text) as Map<String, Object?>));
      } catch (e) {
        completer.completeError(XetInternalException('unexpected result from the native library: $e: $text'));
      }
    }
  }

  doneCb = NativeCallable<HfXetDoneFnFunction>.listener((Pointer<Void> _, int opId, int code, Pointer<Char> payload) {
    final text = takeString(payload) ?? '';
    closeAll();
    cancelToken?._running.remove(opId);
    // Completes the result (never fails itself: every error goes to the completer).
    finish(opId, code, text);
  });

  final arena = Arena();
  try {
    final outOp = arena.alloc(sizeOf<Uint64>()).cast<Uint64>();
    final code = start(
      arena.string(jsonEncode(options)),
      progressCb?.nativeFunction ?? nullptr,
      tokenCb?.nativeFunction ?? nullptr,
      doneCb.nativeFunction,
      outOp,
      arena,
    );
    if (code != HF_XET_OK) {
      // No callback will ever run for a failed start.
      closeAll();
      return Future.error(XetException.fromCode(code, lastErrorMessage() ?? 'the operation could not start'));
    }
    op = outOp.value;
  } catch (e, st) {
    // Failed before the native call took the callbacks (marshalling): none will run.
    closeAll();
    return Future.error(e, st);
  } finally {
    arena.freeAll();
  }
  if (cancelToken != null) {
    cancelToken._running.add(op);
    // Cancelled between the check above and now (by a callback of another
    // operation, say): honour it.
    if (cancelToken.isCancelled) hf_xet_cancel(op);
  }
  return completer.future;
}

Future<void> _answerTokenRequest(int requestId, FutureOr<DartTokenInfo> Function() refresher) async {
  DartTokenInfo info;
  try {
    info = await refresher();
  } catch (e) {
    final arena = Arena();
    try {
      // HF_XET_ERR_UNKNOWN_HANDLE: the operation ended meanwhile; nobody waits.
      hf_xet_token_error(requestId, arena.string('tokenRefresher failed: $e'));
    } finally {
      arena.freeAll();
    }
    return;
  }
  final arena = Arena();
  try {
    hf_xet_token_reply(requestId, arena.string(info.token), info.expiration.toUnsigned(64).toInt());
  } finally {
    arena.freeAll();
  }
}
