//! A node's minimum gas price: the least fee per unit of gas its mempool admits (CometBFT chains built
//! with the Cosmos SDK call it `minimum-gas-prices`). Admission policy, not a consensus rule: each
//! validator picks its own, and a block may carry transactions another validator's mempool refused.

use std::fmt;
use std::str::FromStr;

/// Fractional digits a gas price may have (it is kept in billionths of a base unit).
pub const GAS_PRICE_DECIMALS: u32 = 9;
const SCALE: u128 = 10u128.pow(GAS_PRICE_DECIMALS);

/// Base units of fee per unit of gas, in billionths (so `"0.025"` is 25,000,000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GasPrice {
    nanos: u128,
}

/// Why a text is not a gas price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GasPriceError {
    /// Not digits with at most one decimal point.
    #[error("{0:?} is not a decimal number such as \"0\" or \"0.025\"")]
    NotDecimal(String),
    /// More fractional digits than [`GAS_PRICE_DECIMALS`].
    #[error("{0:?} has more than {GAS_PRICE_DECIMALS} fractional digits")]
    TooPrecise(String),
    /// Larger than a fee can be.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl GasPrice {
    /// No minimum: every fee, zero included, is admitted.
    pub const ZERO: GasPrice = GasPrice { nanos: 0 };

    /// The least fee a transaction asking for `gas_limit` gas must pay: `gas_limit × price`, rounded up
    /// (a fraction of a base unit cannot be paid, and rounding down would admit a fee below the price).
    pub fn min_fee(self, gas_limit: u64) -> u128 {
        let total = u128::from(gas_limit).saturating_mul(self.nanos);
        total.div_ceil(SCALE)
    }

    /// Whether this is no minimum at all.
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
}

impl FromStr for GasPrice {
    type Err = GasPriceError;

    fn from_str(text: &str) -> Result<GasPrice, GasPriceError> {
        let not_decimal = || GasPriceError::NotDecimal(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.ends_with('.')) {
            return Err(not_decimal());
        }
        if fraction.len() > GAS_PRICE_DECIMALS as usize {
            return Err(GasPriceError::TooPrecise(text.to_owned()));
        }
        let too_large = || GasPriceError::TooLarge(text.to_owned());
        let whole: u128 = whole.parse().map_err(|_| too_large())?;
        let mut fraction_nanos: u128 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            let place = 10u128.pow(GAS_PRICE_DECIMALS - 1 - i as u32);
            fraction_nanos += u128::from(b - b'0') * place;
        }
        let nanos = whole
            .checked_mul(SCALE)
            .and_then(|n| n.checked_add(fraction_nanos))
            .ok_or_else(too_large)?;
        Ok(GasPrice { nanos })
    }
}

impl fmt::Display for GasPrice {
    /// The shortest decimal that reads back as the same price (`"0"`, `"0.025"`, `"3"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.nanos / SCALE;
        let fraction = self.nanos % SCALE;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:0width$}", width = GAS_PRICE_DECIMALS as usize);
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_back_as_written_and_price_gas_rounding_up() {
        for text in ["0", "1", "0.025", "3.5", "0.000000001", "1000000"] {
            let price: GasPrice = text.parse().unwrap();
            assert_eq!(price.to_string(), text);
        }
        let price: GasPrice = "0.025".parse().unwrap();
        assert_eq!(price.min_fee(1_000), 25);
        assert_eq!(price.min_fee(100_000), 2_500);
        // 1001 × 0.025 = 25.025: 26 must be paid.
        assert_eq!(price.min_fee(1_001), 26);
        assert_eq!(GasPrice::ZERO.min_fee(u64::MAX), 0);
        assert!("0.000".parse::<GasPrice>().unwrap().is_zero());
        // The largest gas limit at a huge price saturates instead of wrapping.
        let huge: GasPrice = "340282366920938463463".parse().unwrap();
        assert!(huge.min_fee(u64::MAX) > huge.min_fee(1));
    }

    #[test]
    fn what_is_not_a_price_is_refused_with_its_reason() {
        for text in ["", ".5", "5.", "-1", "1e3", "0,5", " 1", "1.2.3", "abc"] {
            assert!(
                matches!(text.parse::<GasPrice>(), Err(GasPriceError::NotDecimal(_))),
                "{text:?}"
            );
        }
        assert!(matches!(
            "0.0000000001".parse::<GasPrice>(),
            Err(GasPriceError::TooPrecise(_))
        ));
        assert!(matches!(
            "999999999999999999999999999999999999999".parse::<GasPrice>(),
            Err(GasPriceError::TooLarge(_))
        ));
    }
}
