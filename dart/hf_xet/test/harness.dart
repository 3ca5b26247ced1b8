// A tiny test harness: package:test is not available where these tests run (see
// README.md). Each test file builds a [Suite], and `run` prints one line per test and
// the tally `N passed, N failed`, which tool/test.sh adds up.
import 'dart:async';
import 'dart:io';

/// Thrown by the `expect*` helpers.
class TestFailure implements Exception {
  final String message;
  TestFailure(this.message);
  @override
  String toString() => message;
}

class Suite {
  final _tests = <(String, Future<void> Function())>[];

  void test(String name, FutureOr<void> Function() body) => _tests.add((name, () async => body()));

  Future<void> run() async {
    var passed = 0;
    var failed = 0;
    for (final (name, body) in _tests) {
      final sw = Stopwatch()..start();
      try {
        await body().timeout(const Duration(minutes: 3));
        passed++;
        print('ok   $name (${sw.elapsedMilliseconds} ms)');
      } catch (e, st) {
        failed++;
        print('FAIL $name: $e');
        print(st.toString().split('\n').take(8).map((l) => '     $l').join('\n'));
      }
    }
    print('$passed passed, $failed failed');
    exitCode = failed == 0 ? 0 : 1;
  }
}

void expect(bool ok, String what) {
  if (!ok) throw TestFailure('expected $what');
}

void expectEquals(Object? actual, Object? expected, String what) {
  if (actual != expected) throw TestFailure('$what: expected $expected, got $actual');
}

void expectBytes(List<int> actual, List<int> expected, String what) {
  if (actual.length != expected.length) {
    throw TestFailure('$what: expected ${expected.length} bytes, got ${actual.length}');
  }
  for (var i = 0; i < actual.length; i++) {
    if (actual[i] != expected[i]) throw TestFailure('$what: first difference at byte $i');
  }
}

/// Awaits [f] and returns its error, which must be a [T].
Future<T> expectThrows<T>(Future<Object?> f, String what) async {
  try {
    final v = await f;
    throw TestFailure('$what: expected $T, but it succeeded with $v');
  } on TestFailure {
    rethrow;
  } catch (e) {
    if (e is T) return e as T;
    throw TestFailure('$what: expected $T, got ${e.runtimeType}: $e');
  }
}

