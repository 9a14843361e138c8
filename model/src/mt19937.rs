//! The Mersenne Twister (MT19937) that both PyTorch's CPU generator and Python's `random` module run. They differ
//! only in how they seed it (`init_genrand` from one 32-bit word for torch, `init_by_array` over the seed's words
//! for Python) and in how they turn its 32-bit outputs into numbers, which their own types do (`TorchGenerator` in
//! `masking.rs`, `PythonRandom` in `python_random.rs`; named, not linked, so this module depends on nothing).

const STATE_WORDS: usize = 624;

#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; STATE_WORDS],
    index: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937").field("index", &self.index).finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// The reference `init_genrand(seed)`.
    pub fn from_seed(seed: u32) -> Self {
        let mut state = [0u32; STATE_WORDS];
        state[0] = seed;
        for i in 1..STATE_WORDS {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Self { state, index: STATE_WORDS }
    }

    /// The reference `init_by_array(key)` (what CPython's `random.seed(n)` runs over the 32-bit words of |n|).
    pub fn from_key(key: &[u32]) -> Self {
        let mut generator = Self::from_seed(19_650_218);
        let state = &mut generator.state;
        let key_length = key.len().max(1);
        let word = |j: usize| key.get(j).copied().unwrap_or(0);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..STATE_WORDS.max(key_length) {
            let prev = state[i - 1];
            state[i] =
                (state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525)).wrapping_add(word(j)).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= STATE_WORDS {
                state[0] = state[STATE_WORDS - 1];
                i = 1;
            }
            if j >= key_length {
                j = 0;
            }
        }
        for _ in 0..STATE_WORDS - 1 {
            let prev = state[i - 1];
            state[i] = (state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= STATE_WORDS {
                state[0] = state[STATE_WORDS - 1];
                i = 1;
            }
        }
        state[0] = 0x8000_0000;
        generator
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..STATE_WORDS {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % STATE_WORDS] & LOWER);
            let mut next = self.state[(i + 397) % STATE_WORDS] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= STATE_WORDS {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_genrand_matches_the_reference_stream() {
        // First outputs of std::mt19937 seeded with 5489 (the C++ standard's default seed).
        let mut generator = Mt19937::from_seed(5489);
        assert_eq!(generator.next_u32(), 3_499_211_612);
        assert_eq!(generator.next_u32(), 581_869_302);
        // The 10000th output of a default-seeded std::mt19937, required by the C++ standard.
        let mut generator = Mt19937::from_seed(5489);
        let last = (0..10_000).map(|_| generator.next_u32()).last().unwrap();
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn init_by_array_matches_the_reference_stream() {
        // mt19937ar.c's own test: init_by_array({0x123, 0x234, 0x345, 0x456}) starts 1067595299 955945823 477289528.
        let mut generator = Mt19937::from_key(&[0x123, 0x234, 0x345, 0x456]);
        assert_eq!(
            [generator.next_u32(), generator.next_u32(), generator.next_u32()],
            [1_067_595_299, 955_945_823, 477_289_528]
        );
    }
}
