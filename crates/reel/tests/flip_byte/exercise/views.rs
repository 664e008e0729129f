//! The views in a trial: every kv path and the kv entries, every list's info and pages,
//! compared with the model.

use super::*;

impl Ctx<'_> {
    pub(crate) fn kv_checks(&mut self, kv: &KvStore) {
        let exp = kv_state(self.expected());
        let mut paths = self.fx.paths.clone();
        paths.extend(self.extra.iter().filter_map(|r| r.key.clone()));
        for p in &paths {
            let path: KvPath = p.parse().unwrap();
            match kv.get(&path) {
                Ok(got) => {
                    let got = got.map(|e| (e.encoding.tag(), e.bytes, e.rev, e.ts));
                    if got.as_ref() != exp.get(p) {
                        self.bad(format!("kv get {p} = {got:?}, expected {:?}", exp.get(p)));
                    }
                }
                Err(e) => {
                    self.err(&format!("kv get {p}"), &e);
                    // The view stops at the same place for every path.
                    break;
                }
            }
        }
        match kv.entries(&KvPath::root()) {
            Ok(v) => {
                let got: KvExp = v
                    .into_iter()
                    .map(|(p, e)| (p.to_string(), (e.encoding.tag(), e.bytes, e.rev, e.ts)))
                    .collect();
                if got != exp {
                    let wrong: Vec<&String> = got
                        .keys()
                        .chain(exp.keys())
                        .filter(|k| got.get(*k) != exp.get(*k))
                        .collect();
                    self.bad(format!("kv entries differ from the model at {wrong:?}"));
                }
            }
            Err(e) => self.err("kv entries", &e),
        }
    }

    /// Every list's info and items; `small_pages` pages through with continuation
    /// tokens (and one reverse page), otherwise one page holds a whole list.
    pub(crate) fn list_checks(&mut self, lists: &ListStore, small_pages: bool) {
        let exp = lists_state(self.expected());
        match lists.keys() {
            Ok(keys) => {
                let want: Vec<String> = exp.keys().cloned().collect();
                if keys != want {
                    self.bad(format!("list keys {keys:?}, expected {want:?}"));
                }
            }
            Err(e) => self.err("list keys", &e),
        }
        for key in self.fx.list_keys.clone() {
            let l = exp.get(&key).cloned().unwrap_or_default();
            let info = match lists.info(&key) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    self.bad(format!("list {key}: info says it does not exist"));
                    continue;
                }
                Err(e) => {
                    self.err(&format!("list info {key}"), &e);
                    continue;
                }
            };
            let want = (
                l.items.len() as u64,
                l.items.first().map_or(l.next_offset, |i| i.0),
                l.next_offset,
                l.items.first().map(|i| i.1),
                l.items.last().map(|i| i.1),
                l.last_nonce,
            );
            let got = (
                info.count,
                info.first_offset,
                info.next_offset,
                info.first_ts,
                info.last_ts,
                info.last_nonce,
            );
            if got != want {
                self.bad(format!("list {key}: info {got:?}, expected {want:?}"));
            }
            // Page forwards to the end.
            let mut paged = Vec::new();
            let mut req = PageRequest {
                limit: Some(if small_pages { 20 } else { 100_000 }),
                ..Default::default()
            };
            let mut failed = false;
            for _ in 0..1000 {
                match lists.read(&key, &req) {
                    Ok(page) => {
                        if page.items.is_empty() {
                            break;
                        }
                        paged.extend(
                            page.items
                                .into_iter()
                                .map(|i| (i.offset, i.ts, i.nonce, i.value.as_bytes().to_vec())),
                        );
                        req.continuation = page.continuation;
                        if req.continuation.is_none() {
                            self.bad(format!("list {key}: a forward page without a token"));
                            break;
                        }
                    }
                    Err(e) => {
                        self.err(&format!("list read {key}"), &e);
                        failed = true;
                        break;
                    }
                }
            }
            let n = paged.len().min(l.items.len());
            if paged[..n] != l.items[..n] || (!failed && paged.len() != l.items.len()) {
                let first_diff = paged.iter().zip(&l.items).position(|(a, b)| a != b);
                self.bad(format!(
                    "list {key}: paged {} items, info counts {}, {} written; first difference at {first_diff:?}",
                    paged.len(),
                    info.count,
                    l.items.len()
                ));
            }
            if !small_pages {
                continue;
            }
            // The newest page, backwards.
            let req = PageRequest {
                limit: Some(3),
                reverse: true,
                ..Default::default()
            };
            match lists.read(&key, &req) {
                Ok(page) => {
                    let got: Vec<_> = page
                        .items
                        .into_iter()
                        .map(|i| (i.offset, i.ts, i.nonce, i.value.as_bytes().to_vec()))
                        .collect();
                    let want: Vec<_> = l.items.iter().rev().take(3).cloned().collect();
                    if got != want {
                        self.bad(format!("list {key}: newest page differs from the model"));
                    }
                }
                Err(e) => self.err(&format!("list read {key} reverse"), &e),
            }
        }
    }
}
