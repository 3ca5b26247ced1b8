import 'dart:convert';
import 'dart:ffi';
import 'dart:typed_data';

import 'bindings.g.dart';
import 'errors.dart';

/// Native memory for the arguments of one call, from `hf_xet_buffer_alloc` (the
/// package has no malloc: package:ffi is not a dependency) and released together by
/// [freeAll]. The library copies every argument before its start call returns, so an
/// arena lives only for the duration of that call.
class Arena {
  final _owned = <Pointer<Uint8>>[];

  /// [len] bytes (at least 1: the ABI returns NULL for 0).
  Pointer<Uint8> alloc(int len) {
    final p = hf_xet_buffer_alloc(len < 1 ? 1 : len);
    if (p == nullptr) {
      throw XetInternalException('hf_xet_buffer_alloc($len) failed: out of memory');
    }
    _owned.add(p);
    return p;
  }

  /// [s] as a NUL-terminated UTF-8 string.
  Pointer<Char> string(String s) {
    final bytes = utf8.encode(s);
    final p = alloc(bytes.length + 1);
    final view = p.asTypedList(bytes.length + 1);
    view.setRange(0, bytes.length, bytes);
    view[bytes.length] = 0;
    return p.cast();
  }

  /// An array of NUL-terminated UTF-8 strings.
  Pointer<Pointer<Char>> strings(List<String> xs) {
    final arr = alloc(xs.length * sizeOf<Pointer<Char>>()).cast<Pointer<Char>>();
    for (var i = 0; i < xs.length; i++) {
      arr[i] = string(xs[i]);
    }
    return arr;
  }

  /// Copies of [bufs] and an array of pointers to them.
  Pointer<Pointer<Uint8>> buffers(List<Uint8List> bufs) {
    final arr = alloc(bufs.length * sizeOf<Pointer<Uint8>>()).cast<Pointer<Uint8>>();
    for (var i = 0; i < bufs.length; i++) {
      final p = alloc(bufs[i].length);
      p.asTypedList(bufs[i].length).setAll(0, bufs[i]);
      arr[i] = p;
    }
    return arr;
  }

  /// An array of `uint64_t` (values above 2^63 as their two's-complement `int`).
  Pointer<Uint64> u64s(List<int> xs) {
    final p = alloc(xs.length * sizeOf<Uint64>()).cast<Uint64>();
    for (var i = 0; i < xs.length; i++) {
      p[i] = xs[i];
    }
    return p;
  }

  /// An array of `size_t`.
  Pointer<Size> sizes(List<int> xs) {
    final p = alloc(xs.length * sizeOf<Size>()).cast<Size>();
    for (var i = 0; i < xs.length; i++) {
      p[i] = xs[i];
    }
    return p;
  }

  /// Returns every allocation to the library.
  void freeAll() {
    for (final p in _owned) {
      hf_xet_buffer_free(p);
    }
    _owned.clear();
  }
}

/// Reads a NUL-terminated UTF-8 string without taking ownership.
String readCString(Pointer<Char> p) {
  final u = p.cast<Uint8>();
  var n = 0;
  while (u[n] != 0) {
    n++;
  }
  return utf8.decode(u.asTypedList(n), allowMalformed: true);
}

/// Reads a string the library handed over and frees it with `hf_xet_string_free`.
String? takeString(Pointer<Char> p) {
  if (p == nullptr) return null;
  try {
    return readCString(p);
  } finally {
    hf_xet_string_free(p);
  }
}

/// The message of the last synchronous error on this thread, if any.
String? lastErrorMessage() => takeString(hf_xet_last_error_message());

/// Throws the [XetException] for a non-OK [code] of a synchronous call.
void check(int code, String call) {
  if (code == HF_XET_OK) return;
  throw XetException.fromCode(code, lastErrorMessage() ?? '$call failed');
}

/// `uint64_t` received as a Dart `int` (two's complement) to an unsigned [BigInt].
BigInt u64(int v) => BigInt.from(v).toUnsigned(64);
