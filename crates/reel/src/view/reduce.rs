//! [`Reduce`]: a view from an initial value and a function, like flumeview-reduce.

use super::View;
use crate::error::Result;
use crate::value::{Encoding, Value};
use reel_log::RecordRef;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A view folding every record into one value with `f(acc, record)`.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// use reel::view::{Reduce, ViewHandle};
/// let spool = reel::Spool::create(tmp.path())?;
/// let total = ViewHandle::open(&spool, Reduce::new("total", 1, 0i64, |acc: &mut i64, r| {
///     *acc += reel::value_json(r)?.as_i64().unwrap_or(0);
///     Ok(())
/// }))?;
/// for n in 1..=4 { spool.append(serde_json::json!(n))?; }
/// assert_eq!(total.read(|v| *v.value())?, 10);
/// # Ok::<(), reel::Error>(())
/// ```
pub struct Reduce<T, F> {
    name: String,
    version: u32,
    init: T,
    acc: T,
    f: F,
}

impl<T: std::fmt::Debug, F> std::fmt::Debug for Reduce<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reduce")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("acc", &self.acc)
            .finish()
    }
}

impl<T: Clone, F> Reduce<T, F>
where
    F: FnMut(&mut T, &RecordRef<'_>) -> Result<()>,
{
    /// A reduce view named `name` at `version`, starting from `init`.
    pub fn new(name: &str, version: u32, init: T, f: F) -> Self {
        Reduce {
            name: name.into(),
            version,
            acc: init.clone(),
            init,
            f,
        }
    }

    /// The accumulated value.
    pub fn value(&self) -> &T {
        &self.acc
    }
}

impl<T, F> View for Reduce<T, F>
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    F: FnMut(&mut T, &RecordRef<'_>) -> Result<()> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn apply(&mut self, record: &RecordRef<'_>) -> Result<()> {
        (self.f)(&mut self.acc, record)
    }
    fn reset(&mut self) {
        self.acc = self.init.clone();
    }
    fn save(&self) -> Result<Vec<u8>> {
        Ok(Value::encode(&self.acc)?.as_bytes().to_vec())
    }
    fn load(&mut self, bytes: &[u8]) -> Result<()> {
        self.acc = Value::from_parts(Encoding::MsgPack, bytes.to_vec()).decode()?;
        Ok(())
    }
}
