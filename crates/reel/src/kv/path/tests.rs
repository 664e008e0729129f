//! Tests of the parent module.

use super::*;
use Element::{Bool, Bytes, Int, Null, Str};
use proptest::prelude::*;

fn p(text: &str) -> Path {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn s(v: &str) -> Element {
    Str(v.into())
}

fn fl(v: f64) -> Element {
    Element::Float(TotalF64::new(v))
}

fn by(v: &[u8]) -> Element {
    Bytes(v.to_vec())
}

/// `text` parses to `elements`, which print as `canon`, which parses back to them.
#[track_caller]
fn valid(text: &str, elements: &[Element], canon: &str) {
    let path = Path(elements.to_vec());
    assert_eq!(p(text), path, "parsing {text}");
    assert_eq!(path.to_string(), canon, "printing {path:?}");
    assert_eq!(p(canon), path, "parsing the canonical {canon}");
}

/// `text` is refused, with the usual message and `why` in it.
#[track_caller]
fn invalid(text: &str, why: &str) {
    match text.parse::<Path>() {
        Ok(path) => panic!("{text:?} parsed to {path:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("bad path `{text}`: ")) && msg.contains(why),
                "{text}: {msg}"
            );
        }
    }
}

/// The non-tuple vectors of DistKV's tests/test_path.py, and its tuples (refused).
#[test]
fn distkv_test_path_valid() {
    valid("a.b.c", &[s("a"), s("b"), s("c")], "a.b.c");
    valid("a:2.c", &[s("a"), Int(2), s("c")], "a:2.c");
    valid(":2.c", &[Int(2), s("c")], ":2.c");
    valid(":t.c", &[Bool(true), s("c")], ":t.c");
    valid(":1:.23.c", &[fl(1.23), s("c")], ":1:.23.c");
    valid(":e:1:.23.c", &[s(""), fl(1.23), s("c")], ":e:1:.23.c");
    valid(
        "a:e:1:.23.c",
        &[s("a"), s(""), fl(1.23), s("c")],
        "a:e:1:.23.c",
    );
    // (From moat-util's later copy of the same tests.)
    valid(
        "a:e:1:.23:e",
        &[s("a"), s(""), fl(1.23), s("")],
        "a:e:1:.23:e",
    );
    valid("a:e:1:.23", &[s("a"), s(""), fl(1.23)], "a:e:1:.23");
    valid("a:e.b", &[s("a"), s(""), s("b")], "a:e.b");
    valid("a.x y.b", &[s("a"), s("x y"), s("b")], "a.x:_y.b");
    valid("a:t", &[s("a"), Bool(true)], "a:t");
    valid("x:n", &[s("x"), Null], "x:n");
    valid(":x1f", &[Int(31)], ":31");
    valid(":x1f.q", &[Int(31), s("q")], ":31.q");
    valid("b:x1f:5", &[s("b"), Int(31), Int(5)], "b:31:5");
    valid(":", &[], ":");
    valid("a:vabc", &[s("a"), by(b"abc")], "a:vabc");
    valid("a:y616299", &[s("a"), by(b"ab\x99")], "a:y616299");
    valid("a:va:_b", &[s("a"), by(b"a b")], "a:va:_b");
    valid("a:v.c", &[s("a"), by(b""), s("c")], "a:v.c");
    for tuple in [
        ":(1,2):1:.23",
        ":1,2:1:.23",
        ":(1,2):e:1:.23",
        ":1,2:e:1:.23",
        ":1,2.c",
        ":1,'a b',2.c",
        ":1,'a:_b',2.c",
    ] {
        invalid(tuple, "is a tuple, which reel does not support");
    }
}

#[test]
fn distkv_test_path_invalid() {
    invalid(":w", "`:w` is not an element");
    invalid(":t:", "lone `:`");
    invalid("a.b:", "lone `:`");
    invalid(":2..c", "doubled dot");
    invalid("a..b", "doubled dot");
    invalid("a.:1", "a dot before `:1`");
    invalid("a.:t", "a dot before `:t`");
    invalid(":x1g", "`:x1g` is not a hexadecimal integer");
    invalid(":x", "`:x` is not a hexadecimal integer");
    invalid(":ec", "`:ec` is not an element"); // (moat-util's copy)
    invalid(".a.b", "leading dot");
    invalid("a.b.", "trailing dot");
    invalid("a:h123", "`:h123` is not an element");
    invalid("", "empty");
    invalid(":list", "`:list` is not an element");
    invalid(":dict", "`:dict` is not an element");
}

#[test]
fn separators_and_constants() {
    valid(":e", &[s("")], ":e");
    valid(":t", &[Bool(true)], ":t");
    valid(":f", &[Bool(false)], ":f");
    valid(":n", &[Null], ":n");
    valid(":e:e", &[s(""), s("")], ":e:e");
    valid(":n:n", &[Null, Null], ":n:n");
    valid(":t:f", &[Bool(true), Bool(false)], ":t:f");
    valid(":e.a", &[s(""), s("a")], ":e.a");
    valid("a:f.b", &[s("a"), Bool(false), s("b")], "a:f.b");
    valid(":31:5", &[Int(31), Int(5)], ":31:5");
    valid(":v:1", &[by(b""), Int(1)], ":v:1");
    valid(":1:vx", &[Int(1), by(b"x")], ":1:vx");
    valid(":va.b", &[by(b"a"), s("b")], ":va.b");
    valid("a:v:v", &[s("a"), by(b""), by(b"")], "a:v:v");
    valid("a", &[s("a")], "a");
    for (text, why) in [
        (".", "leading dot"),
        ("..", "leading dot"),
        ("a.:e", "a dot before `:e`"),
        ("a.:f", "a dot before `:f`"),
        ("a.:n", "a dot before `:n`"),
        ("a.:True", "a dot before `:True`"),
        (":t_", "`_` right after"),
        ("a:ex", "`:ex` is not an element"),
        (":2c", "`:2c` is not an element"),
        (":e5", "`:e5` is not an element"),
        (":t5", "`:t5` is not an element"),
        (":i2", "`:i2` is not an element"),
        (":inf", "`:inf` is not an element"),
        (":nan", "`:nan` is not an element"),
    ] {
        invalid(text, why);
    }
}

/// Reproduced as DistKV behaves, not as its documentation suggests.
#[test]
fn distkv_quirks() {
    // A dot before the prefixed forms is accepted.
    valid("a.:x10", &[s("a"), Int(16)], "a:16");
    valid("a.:b1", &[s("a"), Int(1)], "a:1");
    valid("a.:vab", &[s("a"), by(b"ab")], "a:vab");
    valid("a.:y61", &[s("a"), by(b"a")], "a:va");
    // After a constant an escape starts a string without a dot.
    valid(":t::x", &[Bool(true), s(":x")], ":t.::x");
    valid(":t:.x", &[Bool(true), s(".x")], ":t.:.x");
    valid(":t:_", &[Bool(true), s(" ")], ":t.:_");
    // Plain text after a number or bytes element belongs to it.
    valid(":1_000", &[Int(1000)], ":1000");
    valid(":va_b", &[by(b"a_b")], ":va_b");
}

#[test]
fn escapes() {
    valid("::", &[s(":")], "::");
    valid(":.", &[s(".")], ":.");
    valid(":_", &[s(" ")], ":_");
    valid(":.a", &[s(".a")], ":.a");
    valid("a::", &[s("a:")], "a::");
    valid("a:.b", &[s("a.b")], "a:.b");
    valid("a.::b", &[s("a"), s(":b")], "a.::b");
    valid("a.b:.c.d", &[s("a"), s("b.c"), s("d")], "a.b:.c.d");
    valid("a.b::c.d", &[s("a"), s("b:c"), s("d")], "a.b::c.d");
    valid("a_b", &[s("a_b")], "a_b");
    valid("_", &[s("_")], "_");
    valid("12", &[s("12")], "12");
    // Exactly colon, dot and space are escaped; not `_`, tabs or other text.
    assert_eq!(
        Path(vec![s("a b:c.d_e\tf\u{a0}g/h,")]).to_string(),
        "a:_b::c:.d_e\tf\u{a0}g/h,"
    );
    assert_eq!(
        Path(vec![s(":t"), s(":1"), s(".x")]).to_string(),
        "::t.::1.:.x"
    );
    assert_eq!(Path(vec![s(" ")]).to_string(), ":_");
}

/// `:x` and `:b` are Python's `int(text, 16)` and `int(text, 2)`.
#[test]
fn hex_and_binary_integers() {
    for (text, v) in [
        (":xff", 255),
        (":xFF", 255),
        (":x0", 0),
        (":x-1", -1),
        (":x+1f", 31),
        (":x0x1f", 31),
        (":x0X1F", 31),
        (":x-0x1f", -31),
        (":x0b1", 0xb1),
        (":x1_f", 31),
        (":x0x_1", 1),
        (":x:_1f", 31),
        (":x1f:_", 31),
        (":x 1f", 31),
        (":x\t1f\u{3000}", 31),
        (":x7fffffffffffffff", i64::MAX),
        (":x-8000000000000000", i64::MIN),
        (":b101", 5),
        (":b0b101", 5),
        (":b0B11", 3),
        (":b-101", -5),
        (":b+1", 1),
        (":b1_0", 2),
        (":b0", 0),
    ] {
        assert_eq!(p(text), Path(vec![Int(v)]), "{text}");
    }
    for (text, why) in [
        (":x", "no digits"),
        (":b", "no digits"),
        (":x0x", "no digits"),
        (":x+", "no digits"),
        (":x_1", "misplaced `_`"),
        (":x0x__1", "misplaced `_`"),
        (":x1__f", "misplaced `_`"),
        (":x1f_", "trailing `_`"),
        (":x1g", "not a digit"),
        (":x1 f", "not a digit"),
        (":x- 1", "not a digit"),
        (":x+-1", "not a digit"),
        (":x--1", "not a digit"),
        (":x\u{1c}1", "not a digit"),
        (":b2", "not a digit"),
        (":bar", "not a digit"),
        (":b0x1", "not a digit"),
        (":b0b", "no digits"),
        (":x8000000000000000", "out of range"),
        (":x-8000000000000001", "out of range"),
        (":x1ffffffffffffffffffffffffffffffff", "out of range"),
    ] {
        invalid(text, why);
    }
    invalid(":b2", "`:b2` is not a binary integer");
}

/// Other text after `:` is a Python expression, of which reel takes numbers, `True`,
/// `False` and `None`.
#[test]
fn python_numbers() {
    for (text, e) in [
        (":12", Int(12)),
        (":0", Int(0)),
        (":00", Int(0)),
        (":0_0", Int(0)),
        (":-3", Int(-3)),
        (":+3", Int(3)),
        (":--3", Int(3)),
        (":-+-3", Int(3)),
        (":- 3", Int(-3)),
        (":-:_3", Int(-3)),
        (":-\t-\u{c}3", Int(3)),
        (":3:_", Int(3)),
        (":1:_:_", Int(1)),
        (":-0", Int(0)),
        (":1_000", Int(1000)),
        (":0x1f", Int(31)),
        (":0X1f", Int(31)),
        (":0x_1f", Int(31)),
        (":-0x1f", Int(-31)),
        (":0o17", Int(15)),
        (":0O17", Int(15)),
        (":0b101", Int(5)),
        (":0B1", Int(1)),
        (":9223372036854775807", Int(i64::MAX)),
        (":-9223372036854775808", Int(i64::MIN)),
        (":True", Bool(true)),
        (":False", Bool(false)),
        (":None", Null),
        (": True\u{1f}", Bool(true)),
        (":1e5", fl(1e5)),
        (":1E5", fl(1e5)),
        (":1e+5", fl(1e5)),
        (":1e-5", fl(1e-5)),
        (":1e1_0", fl(1e10)),
        (":1:.", fl(1.0)),
        (":-:.5", fl(-0.5)),
        (":1:.e5", fl(1e5)),
        (":1_0:.5_0", fl(10.5)),
        (":01:.5", fl(1.5)),
        (":01e1", fl(10.0)),
        (":00:.5", fl(0.5)),
        (":-1:.5", fl(-1.5)),
        (":--1:.5", fl(1.5)),
        (":-0:.0", fl(0.0)),
        (":1e400", fl(f64::INFINITY)),
        (":-1e400", fl(f64::NEG_INFINITY)),
    ] {
        assert_eq!(p(text), Path(vec![e]), "{text}");
    }
    for text in [
        ":01",
        ":0_1",
        ":1__000",
        ":1_",
        ":1_:.5",
        ":1:._5",
        ":1e",
        ":1e+",
        ":0x",
        ":0o8",
        ":0b2",
        ":0x__1",
        ":0x1_",
        ":-",
        ":+",
        ":1-",
        ":1j",
        ":1+2",
        ":2-1",
        ":-True",
        ":true",
        ":none",
        ":(1)",
        ":'a'",
        ":1;2",
        ":1#x",
        ":- \u{3000}1",
        ":-\u{b}1",
        ": ",
        ":\u{3000}",
    ] {
        invalid(text, "is not an element");
    }
    for text in [
        ":9223372036854775808",
        ":-9223372036854775809",
        ":0x8000000000000000",
    ] {
        invalid(text, "out of range (reel's integers are 64-bit)");
    }
}

#[test]
fn bytes() {
    for (text, v) in [
        (":y", &b""[..]),
        (":yab", b"\xab"),
        (":yAB", b"\xab"),
        (":y61:_62", b"ab"),
        (":y 61\t62\u{b}\u{c}\r\n", b"ab"),
        (":y616299", b"ab\x99"),
        (":v", b""),
        (":vabc", b"abc"),
        (":va_b", b"a_b"),
        (":v::", b":"),
        (":v:.", b"."),
        (":v:_", b" "),
        (":v~\t\u{7f}", b"~\t\x7f"),
    ] {
        assert_eq!(p(text), Path(vec![by(v)]), "{text}");
    }
    for (text, why) in [
        (":y616", "not pairs of hex digits"),
        (":y6", "not pairs of hex digits"),
        (":y6g", "not pairs of hex digits"),
        (":y6 1", "not pairs of hex digits"),
        (":y6\u{1c}1", "not pairs of hex digits"),
        (":y61\u{a0}", "not ASCII"),
        (":vä", "non-ASCII text"),
    ] {
        invalid(text, why);
    }
    // Printable ASCII (0x20..=0x7e) prints as `:v`, anything else as `:y` + hex.
    for (v, canon) in [
        (&b""[..], ":v"),
        (b" ~", ":v:_~"),
        (b"a:b.c d_e", ":va::b:.c:_d_e"),
        (b"\x1f", ":y1f"),
        (b"\x7f", ":y7f"),
        (b"a\x00", ":y6100"),
        (b"\xff\x0a", ":yff0a"),
    ] {
        valid(canon, &[by(v)], canon);
    }
}

#[test]
fn floats_print_like_python_repr() {
    // (bits, Python's repr), generated with CPython 3.11.
    for (bits, repr) in [
        (0x3ff3ae147ae147ae_u64, "1.23"),
        (0x3fb999999999999a, "0.1"),
        (0x3fe0000000000000, "0.5"),
        (0x3ff0000000000000, "1.0"),
        (0x0000000000000000, "0.0"),
        (0x405ec00000000000, "123.0"),
        (0x40f86a0000000000, "100000.0"),
        (0x430c6bf526340000, "1000000000000000.0"),
        (0x4341c37937e08000, "1e+16"),
        (0x3f1a36e2eb1c432d, "0.0001"),
        (0x3ee4f8b588e368f1, "1e-05"),
        (0x3f202c9dedbc309d, "0.0001234"),
        (0x3e8421f5f40d8376, "1.5e-07"),
        (0x0000000000000001, "5e-324"),
        (0x0010000000000000, "2.2250738585072014e-308"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0x4351c37937e08002, "2.000000000000001e+16"),
        (0x4340000000000000, "9007199254740992.0"),
        (0x42dc12218377de66, "123456789012345.6"),
        (0x43118b54f22aeb03, "1234567890123456.8"),
        (0x4345ee2a2eb5a5c4, "1.2345678901234568e+16"),
        (0x3fd3333333333333, "0.3"),
        (0x3fe5555555555555, "0.6666666666666666"),
        (0xc004000000000000, "-2.5"),
        (0x81a56e1fc2f8f359, "-1e-300"),
        (0x4480f0cf064dd592, "1e+22"),
        (0x54b249ad2594c37d, "1e+100"),
        (0x400921f9f01b866e, "3.14159"),
        (0x41b1de784a000000, "299792458.0"),
        (0x44dfe185ca57c517, "6.02214076e+23"),
        (0x00000000000007e8, "1e-320"),
        (0x7953a6f252e6b438, "2.7216092808335446e+276"),
        (0x32899387269e0d37, "3.035766360112293e-65"),
        (0x062e3fe8a6a3a450, "6.665830898196862e-279"),
        (0x4a98cc2e5d9dc9f8, "2.319469273766672e+51"),
        (0x4688b7671738f7d9, "6.266356115726005e+31"),
        (0xc1026d8cf945b304, "-150961.62171497208"),
        (0x4123f3107faa06d8, "653704.249344076"),
        // Ties between two shortest digit strings: Python takes the even last digit.
        (0x42e34a9ffa76b984, "169689859995084.12"),
        (0x4312802dd653bb35, "1301870984621773.2"),
        (0xc2e13ec7757e9534, "-151690656085161.62"),
        (0x431c56a90979f275, "1994145839086749.2"),
    ] {
        let v = f64::from_bits(bits);
        assert_eq!(py_float_repr(v), repr, "{v:e}");
        let canon = format!(":{}", repr.replace('.', ":."));
        valid(&canon, &[fl(v)], &canon);
    }
    assert_eq!(py_float_repr(-0.0), "-0.0");
    assert_eq!(py_float_repr(f64::INFINITY), "inf");
    assert_eq!(py_float_repr(f64::NEG_INFINITY), "-inf");
    assert_eq!(py_float_repr(f64::NAN), "nan");
    assert_eq!(py_float_repr(-f64::NAN), "nan");
    // In a path, -0.0 is normalised (DistKV would print `:-0:.0` for the same key).
    assert_eq!(Path(vec![fl(-0.0)]).to_string(), ":0:.0");
    valid(
        "a:1:.5:2:t",
        &[s("a"), fl(1.5), Int(2), Bool(true)],
        "a:1:.5:2:t",
    );
}

#[test]
fn non_finite_floats_print_but_are_not_keys() {
    for (v, text) in [
        (f64::INFINITY, ":inf"),
        (f64::NEG_INFINITY, ":-inf"),
        (f64::NAN, ":nan"),
    ] {
        let path = Path(vec![s("a"), fl(v)]);
        assert_eq!(path.to_string(), format!("a{text}"));
        invalid(&format!("a{text}"), "is not an element");
        let err = path.to_key(PathSyntax::DistKv).unwrap_err().to_string();
        assert!(err.contains("has no DistKV text that reads back"), "{err}");
    }
    // `:1e400` reads as infinity, as in DistKV, and so cannot be a key.
    assert!(p(":1e400").to_key(PathSyntax::DistKv).is_err());
}

#[test]
fn total_f64() {
    use std::collections::hash_map::DefaultHasher;
    let hash = |v: TotalF64| {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    };
    let nz = TotalF64::new(-0.0);
    assert_eq!(nz, TotalF64::new(0.0));
    assert!(nz.get().is_sign_positive());
    assert_eq!(hash(nz), hash(TotalF64::new(0.0)));
    let odd_nan = f64::from_bits(0xfff8_0000_0000_0001);
    assert!(odd_nan.is_nan());
    assert_eq!(TotalF64::new(odd_nan), TotalF64::new(f64::NAN));
    assert_eq!(TotalF64::new(odd_nan).get().to_bits(), f64::NAN.to_bits());
    assert_eq!(hash(TotalF64::new(odd_nan)), hash(TotalF64::new(f64::NAN)));
    let mut v: Vec<TotalF64> = [f64::NAN, 1.0, f64::INFINITY, -1.0, 0.0, f64::NEG_INFINITY]
        .into_iter()
        .map(TotalF64::from)
        .collect();
    v.sort();
    let sorted: Vec<f64> = v.into_iter().map(f64::from).collect();
    assert_eq!(
        sorted[..5],
        [f64::NEG_INFINITY, -1.0, 0.0, 1.0, f64::INFINITY]
    );
    assert!(sorted[5].is_nan());
    assert_ne!(TotalF64::new(1.0), TotalF64::new(2.0));
    assert_ne!(hash(TotalF64::new(1.0)), hash(TotalF64::new(2.0)));
    assert_eq!(format!("{:?}", TotalF64::new(1.5)), "1.5");
}

#[test]
fn elements_order_by_kind_then_value() {
    let ordered = [
        Null,
        Bool(false),
        Bool(true),
        Int(-1),
        Int(2),
        fl(-1.0),
        fl(0.5),
        s(""),
        s("a"),
        by(b""),
        by(b"a"),
    ];
    assert!(ordered.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");
    assert_ne!(Int(1), fl(1.0));
    assert_ne!(Int(1), Bool(true));
}

#[test]
fn keys_in_either_syntax() {
    let path = Path(vec![s("a"), Int(2), Bool(true), s(""), Null, s("b c")]);
    let legacy = path.to_key(PathSyntax::Legacy).unwrap();
    let distkv = path.to_key(PathSyntax::DistKv).unwrap();
    assert_eq!(legacy, "a.:2.:t.:e.:n.b:_c");
    assert_eq!(distkv, "a:2:t:e:n.b:_c");
    assert_eq!(Path::from_key(&legacy, PathSyntax::Legacy).unwrap(), path);
    assert_eq!(Path::from_key(&distkv, PathSyntax::DistKv).unwrap(), path);
    // Each syntax refuses the other's text for non-string elements.
    assert!(Path::from_key(&legacy, PathSyntax::DistKv).is_err());
    assert!(Path::from_key(&distkv, PathSyntax::Legacy).is_err());
    // Floats and bytes exist only in the DistKV syntax.
    let path = Path(vec![s("a"), fl(1.5), by(b"x")]);
    assert_eq!(path.to_key(PathSyntax::DistKv).unwrap(), "a:1:.5:vx");
    assert!(path.to_key(PathSyntax::Legacy).is_err());
    assert_eq!(Path::root().to_key(PathSyntax::Legacy).unwrap(), ":");
    assert_eq!(Path::root().to_key(PathSyntax::DistKv).unwrap(), ":");
    assert_eq!(
        PathSyntax::from(reel_log::KvPathSyntax::Legacy),
        PathSyntax::Legacy
    );
    assert_eq!(
        PathSyntax::from(reel_log::KvPathSyntax::DistKv),
        PathSyntax::DistKv
    );
}

#[test]
fn path_helpers() {
    let root = Path::root();
    assert!(root.is_root());
    assert_eq!(root, Path(Vec::new()));
    let a = root.child(s("a"));
    let ab = a.child(Int(2));
    assert!(!a.is_root());
    assert_eq!(ab.elements(), &[s("a"), Int(2)]);
    assert!(ab.starts_with(&a) && ab.starts_with(&ab) && ab.starts_with(&root));
    assert!(!a.starts_with(&ab));
    assert!(!ab.starts_with(&root.child(s("b"))));
}

#[test]
fn element_display_is_the_one_element_path() {
    for e in [
        s("a.b"),
        s(""),
        Int(-3),
        fl(2.5),
        Bool(true),
        Null,
        by(b"\x00"),
    ] {
        assert_eq!(e.to_string(), Path(vec![e.clone()]).to_string());
    }
}

fn element() -> impl Strategy<Value = Element> {
    prop_oneof![
        Just(Null),
        any::<bool>().prop_map(Bool),
        any::<i64>().prop_map(Int),
        (-1000i64..1000).prop_map(Int),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(fl),
        prop_oneof![Just(0.0), Just(1e16), Just(1e-5), Just(0.5), Just(-2.0)].prop_map(fl),
        "[a-z .:_0-9-]{0,8}".prop_map(Str),
        any::<String>().prop_map(Str),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes),
        "[ -~]{0,6}".prop_map(|t| Bytes(t.into_bytes())),
    ]
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(elements in proptest::collection::vec(element(), 0..6)) {
        let path = Path(elements);
        let text = path.to_string();
        prop_assert_eq!(text.parse::<Path>().unwrap(), path.clone());
        prop_assert_eq!(path.to_key(PathSyntax::DistKv).unwrap(), text.clone());
        prop_assert_eq!(Path::from_key(&text, PathSyntax::DistKv).unwrap(), path);
    }

    #[test]
    fn parse_then_print_is_canonical(text in "[a-z.:_0-9tfnexbyvTF+ -]{1,16}") {
        if let Ok(path) = text.parse::<Path>() {
            let canon = path.to_string();
            let again = canon.parse::<Path>().unwrap();
            prop_assert_eq!(&again, &path);
            prop_assert_eq!(again.to_string(), canon);
        }
    }
}
