import 'bindings.g.dart';

/// An error reported by the native hf_xet library.
///
/// [code] is the ABI's error code (`HF_XET_ERR_*` in `include/hf_xet.h`) and
/// [message] the library's explanation. Each code has its own subclass, so callers can
/// catch exactly what they handle:
///
/// ```dart
/// try {
///   await downloadFiles(files: files, endpoint: url, tokenInfo: token);
/// } on XetNotFoundException catch (e) {
///   print('not on the server: ${e.message}');
/// } on XetAuthException {
///   // refresh credentials and retry
/// }
/// ```
class XetException implements Exception {
  /// The ABI error code (never `HF_XET_OK`).
  final int code;

  /// What failed, on what, and what to do about it (from the native library).
  final String message;

  /// An exception with an explicit code; prefer [XetException.fromCode], which picks
  /// the subclass.
  const XetException(this.code, this.message);

  /// The subclass for [code]; unknown codes give a plain [XetException].
  factory XetException.fromCode(int code, String message) {
    switch (code) {
      case HF_XET_ERR_INVALID_ARGUMENT:
        return XetInvalidArgumentException(message);
      case HF_XET_ERR_UNKNOWN_HANDLE:
        return XetUnknownHandleException(message);
      case HF_XET_ERR_CANCELLED:
        return XetCancelledException(message);
      case HF_XET_ERR_IO:
        return XetIoException(message);
      case HF_XET_ERR_NETWORK:
        return XetNetworkException(message);
      case HF_XET_ERR_AUTH:
        return XetAuthException(message);
      case HF_XET_ERR_NOT_FOUND:
        return XetNotFoundException(message);
      case HF_XET_ERR_CORRUPT:
        return XetCorruptException(message);
      case HF_XET_ERR_RANGE:
        return XetRangeException(message);
      case HF_XET_ERR_INTERNAL:
        return XetInternalException(message);
      default:
        return XetException(code, message);
    }
  }

  /// The code's name in the C header, e.g. `HF_XET_ERR_NOT_FOUND`.
  String get codeName {
    switch (code) {
      case HF_XET_ERR_INVALID_ARGUMENT:
        return 'HF_XET_ERR_INVALID_ARGUMENT';
      case HF_XET_ERR_UNKNOWN_HANDLE:
        return 'HF_XET_ERR_UNKNOWN_HANDLE';
      case HF_XET_ERR_CANCELLED:
        return 'HF_XET_ERR_CANCELLED';
      case HF_XET_ERR_IO:
        return 'HF_XET_ERR_IO';
      case HF_XET_ERR_NETWORK:
        return 'HF_XET_ERR_NETWORK';
      case HF_XET_ERR_AUTH:
        return 'HF_XET_ERR_AUTH';
      case HF_XET_ERR_NOT_FOUND:
        return 'HF_XET_ERR_NOT_FOUND';
      case HF_XET_ERR_CORRUPT:
        return 'HF_XET_ERR_CORRUPT';
      case HF_XET_ERR_RANGE:
        return 'HF_XET_ERR_RANGE';
      case HF_XET_ERR_INTERNAL:
        return 'HF_XET_ERR_INTERNAL';
      default:
        return 'code $code';
    }
  }

  @override
  String toString() => '$runtimeType ($codeName): $message';
}

/// A bad argument: null where a value is required, invalid UTF-8 or JSON, a malformed
/// hash, mismatched list lengths. Fix the call; retrying will not help.
class XetInvalidArgumentException extends XetException {
  /// See [XetException.message].
  const XetInvalidArgumentException(String message) : super(HF_XET_ERR_INVALID_ARGUMENT, message);
}

/// An operation or token request id the library does not know (already finished), or
/// memory it did not hand out.
class XetUnknownHandleException extends XetException {
  /// See [XetException.message].
  const XetUnknownHandleException(String message) : super(HF_XET_ERR_UNKNOWN_HANDLE, message);
}

/// The operation was cancelled through its [XetCancelToken] (or
/// [XetOperation.cancel]).
class XetCancelledException extends XetException {
  /// See [XetException.message].
  const XetCancelledException(String message) : super(HF_XET_ERR_CANCELLED, message);
}

/// A local file could not be read or written (not found, permission, disk full).
class XetIoException extends XetException {
  /// See [XetException.message].
  const XetIoException(String message) : super(HF_XET_ERR_IO, message);
}

/// The server could not be reached, kept failing after retries, or stalled.
class XetNetworkException extends XetException {
  /// See [XetException.message].
  const XetNetworkException(String message) : super(HF_XET_ERR_NETWORK, message);
}

/// The server refused the token (401/403), or no token could be obtained (the
/// `tokenRefresher` threw or did not answer in time).
class XetAuthException extends XetException {
  /// See [XetException.message].
  const XetAuthException(String message) : super(HF_XET_ERR_AUTH, message);
}

/// The file hash is not known to the server.
class XetNotFoundException extends XetException {
  /// See [XetException.message].
  const XetNotFoundException(String message) : super(HF_XET_ERR_NOT_FOUND, message);
}

/// Data failed verification (its hash does not match).
class XetCorruptException extends XetException {
  /// See [XetException.message].
  const XetCorruptException(String message) : super(HF_XET_ERR_CORRUPT, message);
}

/// The requested byte range cannot be satisfied for that file.
class XetRangeException extends XetException {
  /// See [XetException.message].
  const XetRangeException(String message) : super(HF_XET_ERR_RANGE, message);
}

/// A bug in the native library (a caught panic included); please report the message.
class XetInternalException extends XetException {
  /// See [XetException.message].
  const XetInternalException(String message) : super(HF_XET_ERR_INTERNAL, message);
}
