//! Alike items together, in the order first seen: the one way reports and
//! dumps group identical tasks and threads (each then orders its groups).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// Groups `items` by `key`: the first item of a key `open`s its group, the
/// others `join` it. Groups come in the order their first item came.
pub(crate) fn group_by<T, K: Hash + Eq, G>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
    mut open: impl FnMut(T) -> G,
    mut join: impl FnMut(&mut G, T),
) -> Vec<G> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<G> = Vec::new();
    for item in items {
        match index.entry(key(&item)) {
            Entry::Occupied(at) => join(&mut groups[*at.get()], item),
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push(open(item));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_items_join_the_group_their_first_opened() {
        let groups = group_by(
            ["b1", "a1", "b2", "c1", "a2"],
            |item| item.as_bytes()[0],
            |item| vec![item],
            |group, item| group.push(item),
        );
        assert_eq!(groups, [vec!["b1", "b2"], vec!["a1", "a2"], vec!["c1"]]);
    }
}
