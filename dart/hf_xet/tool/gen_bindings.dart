// Generates lib/src/bindings.g.dart from the cbindgen header include/hf_xet.h.
//
// Usage: dart tool/gen_bindings.dart <header.h> <out.dart | ->
//
// ffigen needs libclang and pub, neither of which exists where the tests run (see
// README.md), and the ABI is deliberately flat (scalars, strings, arrays of them,
// function pointers; no structs), so a small line-oriented parser of cbindgen's output
// is enough. It understands exactly what cbindgen emits for such an ABI: `#define`
// integer constants, enums, plain and function-pointer typedefs and function
// prototypes, with their doc comments. Anything else is an error naming the line, so
// a header change the generator does not understand fails the drift check loudly
// instead of producing wrong bindings.
import 'dart:io';

/// The asset id the library is looked up under; the build hook reports the code asset
/// under the same name (hook/build.dart) and test.sh maps it in native_assets.yaml.
const assetId = 'package:hf_xet/src/bindings.g.dart';

class GenError implements Exception {
  final String message;
  GenError(this.message);
  @override
  String toString() => 'gen_bindings: $message';
}

/// A C type reduced to what dart:ffi needs: a base name and a pointer depth.
class CType {
  final String base;
  final int pointers;
  CType(this.base, this.pointers);
}

class Param {
  final String? name;
  final CType type;
  Param(this.name, this.type);
}

abstract class Decl {
  final List<String> doc;
  Decl(this.doc);
}

class ConstDecl extends Decl {
  final String name;
  final String dartValue;
  final bool isString;
  ConstDecl(super.doc, this.name, this.dartValue, this.isString);
}

class AliasDecl extends Decl {
  final String name;
  final CType target;
  AliasDecl(super.doc, this.name, this.target);
}

class FnPtrDecl extends Decl {
  final String name;
  final CType ret;
  final List<Param> params;
  FnPtrDecl(super.doc, this.name, this.ret, this.params);
}

class FnDecl extends Decl {
  final String name;
  final CType ret;
  final List<Param> params;
  FnDecl(super.doc, this.name, this.ret, this.params);
}

/// C base types and their dart:ffi native and Dart types.
const Map<String, List<String>> baseTypes = {
  'void': ['Void', 'void'],
  'char': ['Char', 'int'],
  'bool': ['Bool', 'bool'],
  'int': ['Int', 'int'],
  'unsigned int': ['UnsignedInt', 'int'],
  'long': ['Long', 'int'],
  'unsigned long': ['UnsignedLong', 'int'],
  'float': ['Float', 'double'],
  'double': ['Double', 'double'],
  'int8_t': ['Int8', 'int'],
  'int16_t': ['Int16', 'int'],
  'int32_t': ['Int32', 'int'],
  'int64_t': ['Int64', 'int'],
  'uint8_t': ['Uint8', 'int'],
  'uint16_t': ['Uint16', 'int'],
  'uint32_t': ['Uint32', 'int'],
  'uint64_t': ['Uint64', 'int'],
  'size_t': ['Size', 'int'],
  'intptr_t': ['IntPtr', 'int'],
  'uintptr_t': ['UintPtr', 'int'],
};

class Parser {
  final List<String> lines;
  final decls = <Decl>[];
  final aliases = <String, CType>{};
  final fnPtrs = <String>{};
  int i = 0;
  var doc = <String>[];

  Parser(String text) : lines = text.replaceAll('\r\n', '\n').split('\n');

  Never fail(int line, String why) => throw GenError('line ${line + 1}: $why: ${lines[line].trim()}');

  /// Removes a trailing `// ...` comment and an inline `/* ... */` one.
  static String code(String s) {
    s = s.replaceAll(RegExp(r'/\*.*?\*/'), ' ');
    final c = s.indexOf('//');
    return (c >= 0 ? s.substring(0, c) : s).trim();
  }

  void parse() {
    while (i < lines.length) {
      final start = i;
      final raw = lines[i].trim();
      if (raw.startsWith('/*')) {
        readComment();
        continue;
      }
      if (raw.startsWith('///')) {
        doc.add(raw.substring(3).trimRight().replaceFirst(RegExp(r'^ '), ''));
        i++;
        continue;
      }
      final line = code(lines[i]);
      i++;
      if (line.isEmpty) {
        continue;
      }
      if (line.startsWith('#')) {
        parseDirective(start, line);
        doc = [];
        continue;
      }
      if (line == 'extern "C" {' || line == '}') {
        doc = [];
        continue;
      }
      // A declaration: read up to its terminating `;` (after the closing brace for
      // enums).
      var text = line;
      while (!complete(text)) {
        if (i >= lines.length) fail(start, 'unterminated declaration');
        final next = code(lines[i]);
        i++;
        // cbindgen's cpp_compat puts `#ifdef __cplusplus` / `: int32_t` / `#endif`
        // inside enum declarations; the C reading skips the directives.
        if (RegExp(r'^#\s*(ifdef|ifndef|if|endif|else)\b').hasMatch(next)) continue;
        text = '$text $next';
      }
      text = text.replaceAll(RegExp(r'\s+'), ' ').trim();
      parseDecl(start, text);
      doc = [];
    }
  }

  static bool complete(String text) {
    if (text.contains('{')) {
      final close = text.lastIndexOf('}');
      return close >= 0 && text.substring(close).contains(';');
    }
    return text.endsWith(';');
  }

  void readComment() {
    final start = i;
    final body = <String>[];
    var first = true;
    while (true) {
      if (i >= lines.length) fail(start, 'unterminated comment');
      var l = lines[i].trim();
      i++;
      if (first) {
        l = l.replaceFirst(RegExp(r'^/\*\*?'), '');
        first = false;
      }
      final end = l.indexOf('*/');
      if (end >= 0) {
        l = l.substring(0, end);
        if (l.trim().startsWith('*')) l = l.trim().substring(1);
        if (l.trim().isNotEmpty) body.add(l.trimRight().replaceFirst(RegExp(r'^ '), ''));
        break;
      }
      if (l.startsWith('*')) l = l.substring(1);
      body.add(l.trimRight().replaceFirst(RegExp(r'^ '), ''));
    }
    while (body.isNotEmpty && body.first.trim().isEmpty) {
      body.removeAt(0);
    }
    while (body.isNotEmpty && body.last.trim().isEmpty) {
      body.removeLast();
    }
    // Only comments directly above a declaration document it; the file banner and
    // section comments followed by a blank line do not.
    if (i < lines.length && lines[i].trim().isEmpty) {
      doc = [];
    } else {
      doc = body;
    }
  }

  void parseDirective(int line, String text) {
    final define = RegExp(r'^#define\s+(\w+)(?:\s+(.+))?$').firstMatch(text);
    if (define == null) {
      if (RegExp(r'^#(include|ifndef|ifdef|if|endif|else|pragma)\b').hasMatch(text)) return;
      fail(line, 'unsupported preprocessor directive');
    }
    final name = define.group(1)!;
    final value = define.group(2);
    if (value == null) return; // include guard
    decls.add(constant(line, name, value.trim()));
  }

  ConstDecl constant(int line, String name, String value) {
    var v = value;
    // Strip surrounding parentheses and C casts such as `(int32_t)1`.
    while (true) {
      final cast = RegExp(r'^\(\s*[A-Za-z_][\w ]*\)\s*(.+)$').firstMatch(v);
      if (cast != null && baseTypes.containsKey(v.substring(1, v.indexOf(')')).trim())) {
        v = cast.group(1)!.trim();
        continue;
      }
      if (v.startsWith('(') && v.endsWith(')')) {
        v = v.substring(1, v.length - 1).trim();
        continue;
      }
      break;
    }
    if (v.startsWith('"') && v.endsWith('"')) {
      return ConstDecl(doc, name, v, true);
    }
    const limits = {
      'UINT64_MAX': '0xFFFFFFFFFFFFFFFF',
      'INT64_MAX': '0x7FFFFFFFFFFFFFFF',
      'UINT32_MAX': '0xFFFFFFFF',
      'INT32_MAX': '0x7FFFFFFF',
      'SIZE_MAX': '-1',
    };
    if (limits.containsKey(v)) return ConstDecl(doc, name, limits[v]!, false);
    final m = RegExp(r'^(-?)(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$').firstMatch(v);
    if (m == null) fail(line, 'constant value is not an integer or string literal');
    return ConstDecl(doc, name, '${m.group(1)}${m.group(2)}', false);
  }

  void parseDecl(int line, String text) {
    // typedef RET (*NAME)(PARAMS);
    final fnPtr = RegExp(r'^typedef (.+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)\s*;$').firstMatch(text);
    if (fnPtr != null) {
      final name = fnPtr.group(2)!;
      fnPtrs.add(name);
      decls.add(FnPtrDecl(doc, name, type(line, fnPtr.group(1)!), params(line, fnPtr.group(3)!)));
      return;
    }
    // enum NAME { A = 1, ... }; or typedef enum [NAME] { ... } NAME;
    final en = RegExp(r'^(typedef )?enum\s*(\w*)\s*(?::\s*([\w ]+?)\s*)?\{(.*)\}\s*(\w*)\s*;$').firstMatch(text);
    if (en != null) {
      final typeName = en.group(5)!.isNotEmpty ? en.group(5)! : en.group(2)!;
      final underlying = en.group(3) == null ? CType('int', 0) : type(line, en.group(3)!);
      var next = 0;
      for (final item in en.group(4)!.split(',')) {
        final it = item.trim();
        if (it.isEmpty) continue;
        final m = RegExp(r'^(\w+)\s*(?:=\s*(.+))?$').firstMatch(it);
        if (m == null) fail(line, 'unsupported enum item "$it"');
        if (m.group(2) != null) {
          final c = constant(line, m.group(1)!, m.group(2)!.trim());
          next = int.parse(c.dartValue) + 1;
          decls.add(c);
        } else {
          decls.add(ConstDecl(const [], m.group(1)!, '$next', false));
          next++;
        }
      }
      // A C enum is an int in the ABI unless it names its underlying type.
      if (typeName.isNotEmpty) aliases[typeName] = underlying;
      return;
    }
    // typedef TYPE NAME;
    final alias = RegExp(r'^typedef (.+?)\s*\b(\w+)\s*;$').firstMatch(text);
    if (alias != null) {
      final target = type(line, alias.group(1)!);
      aliases[alias.group(2)!] = target;
      decls.add(AliasDecl(doc, alias.group(2)!, target));
      return;
    }
    // RET NAME(PARAMS);
    final fn = RegExp(r'^(.*[\s*])(\w+)\s*\((.*)\)\s*;$').firstMatch(text);
    if (fn != null) {
      decls.add(FnDecl(doc, fn.group(2)!, type(line, fn.group(1)!), params(line, fn.group(3)!)));
      return;
    }
    fail(line, 'unsupported declaration');
  }

  bool isType(String base) =>
      baseTypes.containsKey(base) || aliases.containsKey(base) || fnPtrs.contains(base);

  CType type(int line, String text) {
    final pointers = '*'.allMatches(text).length;
    final words = text
        .replaceAll('*', ' ')
        .split(' ')
        .where((w) => w.isNotEmpty && w != 'const' && w != 'struct' && w != 'enum')
        .join(' ');
    if (!isType(words)) fail(line, 'unsupported type "$text"');
    return CType(words, pointers);
  }

  List<Param> params(int line, String text) {
    final t = text.trim();
    if (t.isEmpty || t == 'void') return [];
    if (t.contains('(')) fail(line, 'inline function pointer parameters are not supported; use a typedef');
    return t.split(',').map((p) {
      final s = p.trim();
      final m = RegExp(r'^(.*?[\s*])(\w+)$').firstMatch(s);
      if (m != null && !isType(m.group(2)!) && m.group(1)!.trim().isNotEmpty) {
        return Param(m.group(2)!, type(line, m.group(1)!));
      }
      return Param(null, type(line, s));
    }).toList();
  }
}

class Emitter {
  final Parser p;
  final out = StringBuffer();
  Emitter(this.p);

  String native(CType t) {
    String base;
    if (p.fnPtrs.contains(t.base)) {
      base = t.base;
    } else if (p.aliases.containsKey(t.base)) {
      final a = p.aliases[t.base]!;
      return native(CType(a.base, a.pointers + t.pointers));
    } else {
      base = baseTypes[t.base]![0];
    }
    for (var k = 0; k < t.pointers; k++) {
      base = 'Pointer<$base>';
    }
    return base;
  }

  String dart(CType t) {
    if (t.pointers > 0 || p.fnPtrs.contains(t.base)) return native(t);
    if (p.aliases.containsKey(t.base)) return dart(p.aliases[t.base]!);
    return baseTypes[t.base]![1];
  }

  static String camel(String s) {
    final parts = s.split('_').where((x) => x.isNotEmpty).toList();
    if (parts.isEmpty) return s;
    return parts.first + parts.skip(1).map((x) => x[0].toUpperCase() + x.substring(1)).join();
  }

  String sig(List<Param> ps, String Function(CType) f) => ps.asMap().entries.map((e) {
        final n = e.value.name;
        return '${f(e.value.type)} ${n == null ? 'arg${e.key}' : camel(n)}';
      }).join(', ');

  void docs(List<String> doc) {
    for (final l in doc) {
      out.writeln(l.isEmpty ? '///' : '/// $l');
    }
  }

  String emit(String headerName) {
    out
      ..writeln('// GENERATED by tool/gen_bindings.dart from $headerName. Do not edit;')
      ..writeln('// regenerate with: dart tool/gen_bindings.dart ../../include/hf_xet.h lib/src/bindings.g.dart')
      ..writeln('// ignore_for_file: constant_identifier_names, non_constant_identifier_names')
      ..writeln()
      ..writeln("@DefaultAsset('$assetId')")
      ..writeln('library;')
      ..writeln()
      ..writeln("import 'dart:ffi';");
    for (final d in p.decls) {
      out.writeln();
      docs(d.doc);
      if (d is ConstDecl) {
        out.writeln('const ${d.isString ? 'String' : 'int'} ${d.name} = ${d.dartValue};');
      } else if (d is AliasDecl) {
        out.writeln('typedef ${d.name} = ${native(d.target)};');
      } else if (d is FnPtrDecl) {
        out
          ..writeln('typedef ${d.name} = Pointer<NativeFunction<${d.name}Function>>;')
          ..writeln()
          ..writeln('/// The native signature of [${d.name}].')
          ..writeln('typedef ${d.name}Function = ${native(d.ret)} Function(${sig(d.params, native)});')
          ..writeln()
          ..writeln('/// The Dart signature of [${d.name}].')
          ..writeln('typedef Dart${d.name}Function = ${dart(d.ret)} Function(${sig(d.params, dart)});');
      } else if (d is FnDecl) {
        out
          ..writeln('@Native<${native(d.ret)} Function(${d.params.map((x) => native(x.type)).join(', ')})>'
              "(symbol: '${d.name}')")
          ..writeln('external ${dart(d.ret)} ${d.name}(${sig(d.params, dart)});');
      }
    }
    return out.toString();
  }
}

String generate(String header, String headerName) {
  final parser = Parser(header)..parse();
  if (!parser.decls.any((d) => d is FnDecl)) throw GenError('no function prototypes found');
  return Emitter(parser).emit(headerName);
}

void main(List<String> args) {
  if (args.length != 2) {
    stderr.writeln('usage: dart tool/gen_bindings.dart <header.h> <out.dart | ->');
    exitCode = 2;
    return;
  }
  try {
    final header = File(args[0]).readAsStringSync();
    final text = generate(header, 'include/hf_xet.h');
    if (args[1] == '-') {
      stdout.write(text);
    } else {
      File(args[1]).writeAsStringSync(text);
    }
  } on GenError catch (e) {
    stderr.writeln(e);
    exitCode = 1;
  }
}
