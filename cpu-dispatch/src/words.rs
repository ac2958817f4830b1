//! Payload words (i32 in network order, as the aggregation packets carry
//! them) to and from host-order values. The byte swaps are most of the cost
//! of these loops on baseline x86-64 (no `pshufb`), hence AVX2 copies. The
//! switch core and the worker engine both use them.

crate::avx2_dispatch! {
    /// `values[i] = words[i]` in host order (as many as both hold).
    pub fn load(values: &mut [i32], words: &[[u8; 4]]) {
        for (value, word) in values.iter_mut().zip(words) {
            *value = i32::from_be_bytes(*word);
        }
    }
}

crate::avx2_dispatch! {
    /// `words[i] = values[i]` in network order (as many as both hold).
    pub fn store(words: &mut [[u8; 4]], values: &[i32]) {
        for (word, value) in words.iter_mut().zip(values) {
            *word = value.to_be_bytes();
        }
    }
}

crate::avx2_dispatch! {
    /// `sums[i] += words[i]`, wrapping (as many as both hold).
    pub fn add(sums: &mut [i32], words: &[[u8; 4]]) {
        for (sum, word) in sums.iter_mut().zip(words) {
            *sum = sum.wrapping_add(i32::from_be_bytes(*word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_and_avx2_copies_agree() {
        let values: std::vec::Vec<i32> = (0..1037)
            .map(|i: i32| i.wrapping_mul(-0x5bd1_e995))
            .collect();
        let run = |baseline: bool| {
            crate::set_baseline_only(baseline);
            let mut words = std::vec![[0u8; 4]; values.len()];
            store(&mut words, &values);
            let mut back = std::vec![0i32; values.len()];
            load(&mut back, &words);
            let mut sums = values.clone();
            add(&mut sums, &words);
            crate::set_baseline_only(false);
            (words, back, sums)
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn network_order_round_trip_and_wrapping_add() {
        // Long enough for the vector loops and a scalar tail.
        let values: std::vec::Vec<i32> = (0..1037)
            .map(|i: i32| i.wrapping_mul(0x1234_5677) ^ (i << 7))
            .collect();
        let mut words = std::vec![[0u8; 4]; values.len()];
        store(&mut words, &values);
        for (w, v) in words.iter().zip(&values) {
            assert_eq!(*w, v.to_be_bytes());
        }
        let mut back = std::vec![0i32; values.len()];
        load(&mut back, &words);
        assert_eq!(back, values);
        let mut sums = std::vec![i32::MAX; values.len()];
        add(&mut sums, &words);
        for (s, v) in sums.iter().zip(&values) {
            assert_eq!(*s, i32::MAX.wrapping_add(*v));
        }
        // Shorter side wins.
        let mut few = [7i32; 3];
        add(&mut few, &words[..2]);
        assert_eq!(few, [7 + values[0], 7 + values[1], 7]);
    }
}
