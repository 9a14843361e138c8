//! CPython's `random` module (3.11), as far as BEiT's block-mask generator uses it: `random.seed(n)` for an
//! integer, `random()`, `uniform(a, b)` and `randint(a, b)`. Block masks must equal the ones transformers'
//! `FlavaMaskingGenerator` draws after `random.seed(n)`, so every step follows CPython's own C and Python code
//! (`_randommodule.c`, `random.py`) rather than a crate with its own conventions.

use crate::mt19937::Mt19937;

#[derive(Clone, Debug)]
pub struct PythonRandom {
    generator: Mt19937,
}

impl PythonRandom {
    /// `random.seed(seed)`: `init_by_array` over the 32-bit words of the seed, least significant first (0 gives the
    /// key `[0]`).
    pub fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let key: &[u32] = if high == 0 { &[low] } else { &[low, high] };
        Self { generator: Mt19937::from_key(key) }
    }

    /// `random.random()`: 53 random bits from two outputs, in [0, 1).
    pub fn random(&mut self) -> f64 {
        let high = f64::from(self.generator.next_u32() >> 5);
        let low = f64::from(self.generator.next_u32() >> 6);
        (high * 67_108_864.0 + low) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.uniform(a, b)` = `a + (b - a) * random()` (also when `b < a`).
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }

    /// `random.randint(a, b)`: `a + _randbelow(b - a + 1)`, which draws `getrandbits(k)` for
    /// `k = (b - a + 1).bit_length()` until the value is in range — so even `randint(0, 0)` consumes one output.
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        assert!(b >= a, "randint({a}, {b}): empty range");
        let span = (b - a + 1) as u64;
        let bits = 64 - span.leading_zeros();
        assert!(bits <= 32, "randint spans of more than 2^32 values are not needed here");
        loop {
            let value = u64::from(self.generator.next_u32() >> (32 - bits));
            if value < span {
                return a + value as i64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_matches_cpython() {
        // python3.11 -c "import random; random.seed(0); print([random.random() for _ in range(3)])"
        let mut random = PythonRandom::new(0);
        assert_eq!(random.random(), 0.8444218515250481);
        assert_eq!(random.random(), 0.7579544029403025);
        assert_eq!(random.random(), 0.420571580830845);
        // python3.11 -c "import random; random.seed(42); print(random.random())"
        assert_eq!(PythonRandom::new(42).random(), 0.6394267984578837);
        // A seed of two 32-bit words: python3.11 -c "import random; random.seed(2**40 + 5); print(random.random())"
        assert_eq!(PythonRandom::new((1 << 40) + 5).random(), 0.5043802970418443);
    }

    #[test]
    fn randint_matches_cpython() {
        // python3.11 -c "import random; random.seed(1); print([random.randint(0, 10) for _ in range(5)])"
        let mut random = PythonRandom::new(1);
        let drawn: Vec<i64> = (0..5).map(|_| random.randint(0, 10)).collect();
        assert_eq!(drawn, vec![2, 9, 1, 4, 1]);
    }
}
