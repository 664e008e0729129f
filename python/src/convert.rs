//! Python values to and from the stored forms: MessagePack for JSON-compatible values
//! (written and read directly, without an intermediate JSON tree, since this is on
//! every append and every read), raw bytes for `bytes`, and kv paths.

use crate::errors;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use reel::kv::{Element, Path};
use reel::{Encoding, Value};

/// Containers nested deeper are refused when stored, as `reel write` and the HTTP API
/// refuse them (serde_json's limit), so that whatever Python stores can also be written
/// back through them; deeper still is almost always a container that holds itself.
const MAX_NESTING: usize = 127;
/// Values read back may be nested deeper (other writers); beyond this they are refused.
const MAX_DEPTH: usize = 256;

/// A Python value in its stored form: `bytes` as raw bytes, anything else as
/// MessagePack. Raises `TypeError` naming what cannot be stored; nothing is stored then.
pub fn to_value(v: &Bound<'_, PyAny>) -> PyResult<Value> {
    // A subclass of bytes is bytes too (as a subclass of str, int or dict is stored as
    // its base type).
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Value::bytes(b.as_bytes()));
    }
    let mut out = Vec::with_capacity(64);
    encode(v, &mut out, 0)?;
    Ok(Value::from_parts(Encoding::MsgPack, out))
}

/// A JSON-compatible Python value as `serde_json` (for the list API, which takes JSON).
pub fn to_json(v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let value = to_value(v)?;
    if value.encoding() == Encoding::Bytes {
        return Err(PyTypeError::new_err(
            "a list item must be JSON-compatible (dict, list, str, int, float, bool or None), not bytes",
        ));
    }
    value.to_json().map_err(errors::from_reel)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Refuses a container at `depth` (0 for the value itself) past [`MAX_NESTING`].
fn check_nesting(depth: usize) -> PyResult<()> {
    if depth >= MAX_NESTING {
        return Err(PyValueError::new_err(format!(
            "value is nested more than {MAX_NESTING} levels deep, the limit of `reel write` and the HTTP API (does a container hold itself?)"
        )));
    }
    Ok(())
}

fn encode(v: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if v.is_none() {
        out.push(0xc0);
    } else if let Ok(s) = v.cast::<PyString>() {
        write_str(out, &s.to_cow()?);
    } else if let Ok(b) = v.cast::<PyBool>() {
        out.push(if b.is_true() { 0xc3 } else { 0xc2 });
    } else if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            write_int(out, i);
        } else if let Ok(u) = v.extract::<u64>() {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        } else {
            return Err(PyTypeError::new_err(format!(
                "cannot store int {}: it does not fit in 64 bits (stored values hold -2**63 to 2**64-1)",
                v.str()?
            )));
        }
    } else if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        if !f.is_finite() {
            return Err(PyValueError::new_err(format!(
                "float {f} is not JSON-compatible (no NaN or infinity)"
            )));
        }
        out.push(0xcb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    } else if let Ok(d) = v.cast::<PyDict>() {
        check_nesting(depth)?;
        write_len(out, d.len(), 0x80, 0xde);
        for (k, val) in d.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "dict keys must be str to be stored, not {} ({})",
                    type_name(&k),
                    k.repr()?
                )));
            };
            write_str(out, &k.to_cow()?);
            encode(&val, out, depth + 1)?;
        }
    } else if let Ok(l) = v.cast::<PyList>() {
        check_nesting(depth)?;
        write_len(out, l.len(), 0x90, 0xdc);
        for item in l.iter() {
            encode(&item, out, depth + 1)?;
        }
    } else if let Ok(t) = v.cast::<PyTuple>() {
        check_nesting(depth)?;
        write_len(out, t.len(), 0x90, 0xdc);
        for item in t.iter() {
            encode(&item, out, depth + 1)?;
        }
    } else if v.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "bytes can be stored only as a whole value, not inside a dict or list \
             (encode them, e.g. as base64 text)",
        ));
    } else {
        return Err(PyTypeError::new_err(format!(
            "cannot store a value of type {}: values are dict, list, tuple, str, int, float, \
             bool, None, or bytes as a whole value",
            type_name(v)
        )));
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= u8::MAX as usize {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// A map or array header: `fix | n` below 16, else the 16- or 32-bit form.
fn write_len(out: &mut Vec<u8>, n: usize, fix: u8, marker16: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(marker16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(marker16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..128).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if i32::try_from(i).is_ok() {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// A stored value as a Python object: `bytes` for raw bytes, `None` for a deletion.
pub fn from_stored(py: Python<'_>, encoding: Encoding, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    match encoding {
        Encoding::Bytes => Ok(PyBytes::new(py, bytes).into_any().unbind()),
        Encoding::Tombstone => Ok(py.None()),
        Encoding::MsgPack => decode_all(py, bytes),
        Encoding::ListItem => match bytes.get(8..) {
            Some(rest) => decode_all(py, rest),
            None => Err(corrupt("a list item shorter than its offset")),
        },
    }
}

/// [`from_stored`] of a [`Value`].
pub fn from_value(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    from_stored(py, v.encoding(), v.as_bytes())
}

fn corrupt(what: &str) -> PyErr {
    errors::from_reel(reel::Error::Decode(format!("stored value: {what}")))
}

fn decode_all(py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    let mut r = Decoder { b: bytes, at: 0 };
    let v = r.value(py, 0)?;
    if r.at != bytes.len() {
        return Err(corrupt("trailing bytes after the MessagePack value"));
    }
    Ok(v)
}

/// Reads MessagePack as the engine writes it (rmp-serde from JSON values): nil, bool,
/// ints, floats, str, bin, arrays and maps with str keys.
struct Decoder<'a> {
    b: &'a [u8],
    at: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> PyResult<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| corrupt("MessagePack value cut short"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn be<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len(&mut self, width: usize) -> PyResult<usize> {
        Ok(match width {
            1 => self.be::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn str<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyString>> {
        let raw = self.take(n)?;
        let s = std::str::from_utf8(raw).map_err(|_| corrupt("a string is not UTF-8"))?;
        Ok(PyString::new(py, s))
    }

    fn value(&mut self, py: Python<'_>, depth: usize) -> PyResult<Py<PyAny>> {
        if depth > MAX_DEPTH {
            return Err(corrupt("nested too deeply"));
        }
        let m = self.be::<1>()?[0];
        let obj: Bound<'_, PyAny> = match m {
            0x00..=0x7f => (m as i64).into_pyobject(py)?.into_any(),
            0xe0..=0xff => (m as i8 as i64).into_pyobject(py)?.into_any(),
            0x80..=0x8f => return self.map(py, (m & 0x0f) as usize, depth),
            0x90..=0x9f => return self.array(py, (m & 0x0f) as usize, depth),
            0xa0..=0xbf => self.str(py, (m & 0x1f) as usize)?.into_any(),
            0xc0 => return Ok(py.None()),
            0xc2 => PyBool::new(py, false).to_owned().into_any(),
            0xc3 => PyBool::new(py, true).to_owned().into_any(),
            0xc4..=0xc6 => {
                let n = self.len(1 << (m - 0xc4))?;
                PyBytes::new(py, self.take(n)?).into_any()
            }
            0xca => (f32::from_be_bytes(self.be()?) as f64)
                .into_pyobject(py)?
                .into_any(),
            0xcb => f64::from_be_bytes(self.be()?).into_pyobject(py)?.into_any(),
            0xcc => (self.be::<1>()?[0] as u64).into_pyobject(py)?.into_any(),
            0xcd => (u16::from_be_bytes(self.be()?) as u64)
                .into_pyobject(py)?
                .into_any(),
            0xce => (u32::from_be_bytes(self.be()?) as u64)
                .into_pyobject(py)?
                .into_any(),
            0xcf => u64::from_be_bytes(self.be()?).into_pyobject(py)?.into_any(),
            0xd0 => (self.be::<1>()?[0] as i8 as i64)
                .into_pyobject(py)?
                .into_any(),
            0xd1 => (i16::from_be_bytes(self.be()?) as i64)
                .into_pyobject(py)?
                .into_any(),
            0xd2 => (i32::from_be_bytes(self.be()?) as i64)
                .into_pyobject(py)?
                .into_any(),
            0xd3 => i64::from_be_bytes(self.be()?).into_pyobject(py)?.into_any(),
            0xd9..=0xdb => {
                let n = self.len(1 << (m - 0xd9))?;
                self.str(py, n)?.into_any()
            }
            0xdc | 0xdd => {
                let n = self.len(if m == 0xdc { 2 } else { 4 })?;
                return self.array(py, n, depth);
            }
            0xde | 0xdf => {
                let n = self.len(if m == 0xde { 2 } else { 4 })?;
                return self.map(py, n, depth);
            }
            other => {
                return Err(corrupt(&format!(
                    "MessagePack marker 0x{other:02x} is not one reel writes"
                )));
            }
        };
        Ok(obj.unbind())
    }

    fn array(&mut self, py: Python<'_>, n: usize, depth: usize) -> PyResult<Py<PyAny>> {
        // Every element takes at least one byte: a length beyond what is left is damage,
        // and must not become a huge allocation.
        if n > self.b.len() - self.at {
            return Err(corrupt("an array longer than its bytes"));
        }
        let list = PyList::empty(py);
        for _ in 0..n {
            list.append(self.value(py, depth + 1)?)?;
        }
        Ok(list.into_any().unbind())
    }

    fn map(&mut self, py: Python<'_>, n: usize, depth: usize) -> PyResult<Py<PyAny>> {
        let dict = PyDict::new(py);
        for _ in 0..n {
            let k = self.value(py, depth + 1)?;
            let v = self.value(py, depth + 1)?;
            dict.set_item(k, v)?;
        }
        Ok(dict.into_any().unbind())
    }
}

/// A JSON value as a Python object (ints stay ints, objects keep their order).
pub fn from_json(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => py.None(),
        J::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind()
            }
        }
        J::String(s) => PyString::new(py, s).into_any().unbind(),
        J::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(from_json(py, item)?)?;
            }
            list.into_any().unbind()
        }
        J::Object(o) => {
            let dict = PyDict::new(py);
            for (k, item) in o {
                dict.set_item(k, from_json(py, item)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

/// A kv path from DistKV text (`"a.b:.c"`) or a tuple/list of elements
/// (`("a", "b.c", 12)`); `None` is the root.
pub fn to_path(p: Option<&Bound<'_, PyAny>>) -> PyResult<Path> {
    let Some(p) = p else {
        return Ok(Path::default());
    };
    if p.is_none() {
        return Ok(Path::default());
    }
    if let Ok(s) = p.cast::<PyString>() {
        let text = s.to_cow()?;
        return text
            .parse::<Path>()
            .map_err(|e| errors::invalid(format!("bad path {text:?}: {e}")));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = p.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = p.cast::<PyList>() {
        l.iter().collect()
    } else {
        return Err(PyTypeError::new_err(format!(
            "a path is DistKV text (\"a.b:.c\") or a tuple of elements, not {}",
            type_name(p)
        )));
    };
    let mut elements = Vec::with_capacity(items.len());
    for el in items {
        elements.push(if el.is_none() {
            Element::Null
        } else if let Ok(b) = el.cast::<PyBool>() {
            Element::Bool(b.is_true())
        } else if let Ok(s) = el.cast::<PyString>() {
            Element::Str(s.to_cow()?.into_owned())
        } else if el.is_instance_of::<PyInt>() {
            Element::Int(el.extract::<i64>().map_err(|_| {
                PyOverflowError::new_err("a path element int must fit in 64 signed bits")
            })?)
        } else if let Ok(f) = el.cast::<PyFloat>() {
            Element::Float(f.value().into())
        } else if let Ok(b) = el.cast::<PyBytes>() {
            Element::Bytes(b.as_bytes().to_vec())
        } else {
            return Err(PyTypeError::new_err(format!(
                "a path element is str, int, float, bool, bytes or None, not {}",
                type_name(&el)
            )));
        });
    }
    Ok(Path(elements))
}
