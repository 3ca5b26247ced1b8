// The bindings generator on small headers: what it emits for each construct of the
// ABI, and that it refuses what it does not understand (instead of emitting wrong
// bindings).
import '../tool/gen_bindings.dart';
import 'harness.dart';

const header = '''
/* Banner, not documentation. */

#ifndef HF_XET_H
#define HF_XET_H

#include <stdint.h>

/**
 * Success.
 */
#define HF_XET_OK 0

#define HF_XET_ERR_RANGE (int32_t)9

#define HF_XET_UNKNOWN_TOTAL UINT64_MAX

enum HfXetCode {
  A = 0,
  B,
  C = 0x10,
};
typedef int32_t HfXetCode;

/**
 * Progress.
 */
typedef void (*HfXetProgressFn)(void *user_data,
                                uint64_t op,
                                int64_t item);

typedef void (*HfXetDoneFn)(void*, uint64_t, char*);

enum HfXetKind
#ifdef __cplusplus
  : uint8_t
#endif // __cplusplus
 {
  K0 = 0,
  K1 = 1,
};
#ifndef __cplusplus
typedef uint8_t HfXetKind;
#endif // __cplusplus

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Static.
 *
 * Never freed.
 */
const char *hf_xet_version(void);

HfXetCode hf_xet_cancel(uint64_t op);

int32_t hf_xet_start(const char *const *paths,
                     const size_t *lengths,
                     HfXetProgressFn progress,
                     HfXetDoneFn done,
                     void *user_data,
                     uint64_t *out_op);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* HF_XET_H */
''';

void expectContains(String text, String line) {
  expect(text.contains(line), 'output to contain "$line"\n--- output:\n$text');
}

void main() async {
  final s = Suite();

  s.test('constants, enums, typedefs, callbacks and functions', () {
    final out = generate(header, 'x.h');
    expectContains(out, "@DefaultAsset('package:hf_xet/src/bindings.g.dart')\nlibrary;");
    expectContains(out, '/// Success.\nconst int HF_XET_OK = 0;');
    expectContains(out, 'const int HF_XET_ERR_RANGE = 9;');
    expectContains(out, 'const int HF_XET_UNKNOWN_TOTAL = 0xFFFFFFFFFFFFFFFF;');
    expectContains(out, 'const int A = 0;');
    expectContains(out, 'const int B = 1;');
    expectContains(out, 'const int C = 0x10;');
    expectContains(out, 'typedef HfXetCode = Int32;');
    // cbindgen's cpp_compat enum, with its C typedef.
    expectContains(out, 'const int K1 = 1;');
    expectContains(out, 'typedef HfXetKind = Uint8;');
    expectContains(out, '/// Progress.\ntypedef HfXetProgressFn = Pointer<NativeFunction<HfXetProgressFnFunction>>;');
    expectContains(
        out, 'typedef HfXetProgressFnFunction = Void Function(Pointer<Void> userData, Uint64 op, Int64 item);');
    expectContains(
        out, 'typedef DartHfXetProgressFnFunction = void Function(Pointer<Void> userData, int op, int item);');
    expectContains(out, 'typedef HfXetDoneFnFunction = Void Function(Pointer<Void> arg0, Uint64 arg1, Pointer<Char> arg2);');
    expectContains(out,
        "/// Static.\n///\n/// Never freed.\n@Native<Pointer<Char> Function()>(symbol: 'hf_xet_version')\nexternal Pointer<Char> hf_xet_version();");
    expectContains(out, "@Native<Int32 Function(Uint64)>(symbol: 'hf_xet_cancel')\nexternal int hf_xet_cancel(int op);");
    expectContains(
        out,
        "@Native<Int32 Function(Pointer<Pointer<Char>>, Pointer<Size>, HfXetProgressFn, HfXetDoneFn, Pointer<Void>, "
        "Pointer<Uint64>)>(symbol: 'hf_xet_start')\n"
        'external int hf_xet_start(Pointer<Pointer<Char>> paths, Pointer<Size> lengths, HfXetProgressFn progress, '
        'HfXetDoneFn done, Pointer<Void> userData, Pointer<Uint64> outOp);');
    expect(!out.contains('Banner'), 'the file banner is not documentation');
  });

  s.test('the same header gives the same output', () {
    expectEquals(generate(header, 'x.h'), generate(header, 'x.h'), 'deterministic');
  });

  s.test('unsupported constructs fail with the line', () {
    for (final bad in [
      'struct Foo { int a; };\nint32_t f(void);',
      'int32_t f(struct_t x);',
      'int32_t f(void (*cb)(int));',
      '#define X some_macro(1)\nint32_t f(void);',
      '#error nope\nint32_t f(void);',
      'int32_t f(void)',
    ]) {
      try {
        generate(bad, 'bad.h');
        throw TestFailure('accepted: $bad');
      } on GenError catch (e) {
        expect(e.message.contains('line '), 'a line number in "${e.message}"');
      }
    }
  });

  s.test('a header without functions is an error', () {
    try {
      generate('#define A 1\n', 'empty.h');
      throw TestFailure('accepted a header without functions');
    } on GenError catch (_) {}
  });

  await s.run();
}
