// Builds the Rust library xet-ffi with cargo for the target OS and architecture and
// reports it as the code asset behind lib/src/bindings.g.dart's @DefaultAsset.
//
// Not run by tool/test.sh: it needs the Dart SDK's hook runner and pub, which are not
// available where the tests run (README.md); test.sh builds the same library and
// writes the native_assets.yaml this hook's output would become.
//
// Needs a Rust toolchain (rustup) with the target installed
// (`rustup target add <triple>`), and the Rust workspace two directories above this
// package (the repository checkout: a path or git dependency).
import 'dart:io';

import 'package:code_assets/code_assets.dart';
import 'package:hooks/hooks.dart';

/// Must match the `@DefaultAsset` of lib/src/bindings.g.dart (tool/gen_bindings.dart).
const _assetName = 'src/bindings.g.dart';

void main(List<String> args) async {
  await build(args, (input, output) async {
    if (!input.config.buildCodeAssets) return;
    final code = input.config.code;
    final triple = _rustTriple(code);
    final workspace = input.packageRoot.resolve('../../');
    if (!File.fromUri(workspace.resolve('Cargo.toml')).existsSync() ||
        !Directory.fromUri(workspace.resolve('crates/xet-ffi/')).existsSync()) {
      throw StateError('hf_xet build hook: the Rust workspace (Cargo.toml, crates/xet-ffi) is not at '
          '${workspace.toFilePath()}; depend on hf_xet from a checkout of its repository');
    }
    final targetDir = input.outputDirectoryShared.resolve('cargo/');
    final env = <String, String>{};
    if (code.targetOS == OS.android) {
      // cargo links Android libraries with the NDK's clang, which the SDK hands to
      // hooks as the C compiler; it must be told the API level through --target.
      final cc = code.cCompiler;
      if (cc == null) throw StateError('hf_xet build hook: no C compiler (Android NDK) configured');
      final api = code.android.targetNdkApi;
      final clangTarget = triple.replaceFirst('armv7', 'armv7a');
      final key = 'CARGO_TARGET_${triple.toUpperCase().replaceAll('-', '_')}';
      env['${key}_LINKER'] = cc.compiler.toFilePath();
      env['${key}_RUSTFLAGS'] = '-C link-arg=--target=$clangTarget$api';
    }
    final result = await Process.run(
      'cargo',
      ['build', '--release', '-p', 'xet-ffi', '--target', triple, '--target-dir', targetDir.toFilePath()],
      workingDirectory: workspace.toFilePath(),
      environment: env,
    );
    if (result.exitCode != 0) {
      throw StateError('hf_xet build hook: cargo build for $triple failed (exit ${result.exitCode}):\n'
          '${result.stdout}\n${result.stderr}');
    }
    final lib = targetDir.resolve('$triple/release/${code.targetOS.dylibFileName('xet_ffi')}');
    if (!File.fromUri(lib).existsSync()) {
      throw StateError('hf_xet build hook: cargo succeeded but ${lib.toFilePath()} is missing');
    }
    output.assets.code.add(CodeAsset(
      package: input.packageName,
      name: _assetName,
      linkMode: DynamicLoadingBundled(),
      file: lib,
    ));
    // Rebuild when the Rust sources change.
    output.dependencies.addAll([
      workspace.resolve('Cargo.toml'),
      workspace.resolve('Cargo.lock'),
      for (final crate in ['xet-format', 'xet-store', 'xet-transfer', 'xet-ffi']) workspace.resolve('crates/$crate/'),
    ]);
  });
}

/// The Rust target triple for the hook's target.
String _rustTriple(CodeConfig code) {
  final os = code.targetOS;
  final arch = code.targetArchitecture;
  String? triple;
  if (os == OS.linux) {
    triple = {
      Architecture.x64: 'x86_64-unknown-linux-gnu',
      Architecture.arm64: 'aarch64-unknown-linux-gnu',
      Architecture.ia32: 'i686-unknown-linux-gnu',
      Architecture.arm: 'armv7-unknown-linux-gnueabihf',
      Architecture.riscv64: 'riscv64gc-unknown-linux-gnu',
    }[arch];
  } else if (os == OS.macOS) {
    triple = {Architecture.x64: 'x86_64-apple-darwin', Architecture.arm64: 'aarch64-apple-darwin'}[arch];
  } else if (os == OS.windows) {
    triple = {
      Architecture.x64: 'x86_64-pc-windows-msvc',
      Architecture.arm64: 'aarch64-pc-windows-msvc',
      Architecture.ia32: 'i686-pc-windows-msvc',
    }[arch];
  } else if (os == OS.android) {
    triple = {
      Architecture.arm64: 'aarch64-linux-android',
      Architecture.arm: 'armv7-linux-androideabi',
      Architecture.x64: 'x86_64-linux-android',
      Architecture.ia32: 'i686-linux-android',
    }[arch];
  } else if (os == OS.iOS) {
    final simulator = code.iOS.targetSdk == IOSSdk.iPhoneSimulator;
    if (arch == Architecture.arm64) {
      triple = simulator ? 'aarch64-apple-ios-sim' : 'aarch64-apple-ios';
    } else if (arch == Architecture.x64) {
      triple = 'x86_64-apple-ios';
    }
  }
  if (triple == null) throw UnsupportedError('hf_xet build hook: no Rust target for $os/$arch');
  return triple;
}
