//! Typed value checks shared by broker and topic configs, with Kafka `ConfigDef`'s wording
//! ("Not a number of type INT", "Value must be at least 14", ...). Values are trimmed first, as
//! `ConfigDef.parseType` trims every string value.

/// Kafka's config value types that Sluice checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueKind {
    /// 32-bit integer within `[min, max]`.
    Int {
        min: i64,
        max: i64,
    },
    /// 64-bit integer within `[min, max]`.
    Long {
        min: i64,
        max: i64,
    },
    /// Double within `[min, max]`.
    Double {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of the listed strings (case-sensitive, as `ValidString`).
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are all among the listed strings (`ValidList`).
    ListOf(&'static [&'static str]),
}

pub const INT_ANY: ValueKind = ValueKind::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
pub const LONG_ANY: ValueKind = ValueKind::Long {
    min: i64::MIN,
    max: i64::MAX,
};

pub const fn int_at_least(min: i64) -> ValueKind {
    ValueKind::Int {
        min,
        max: i32::MAX as i64,
    }
}

pub const fn long_at_least(min: i64) -> ValueKind {
    ValueKind::Long { min, max: i64::MAX }
}

fn check_range_i(v: i64, min: i64, max: i64) -> Result<(), String> {
    if v < min {
        return Err(format!("Value must be at least {min}"));
    }
    if v > max {
        return Err(format!("Value must be no more than {max}"));
    }
    Ok(())
}

/// Parses an integer of the given Kafka type name, accepting a leading `+` like Java.
fn parse_integer(value: &str, type_name: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let v: i64 = value
        .parse()
        .map_err(|_| format!("Not a number of type {type_name}"))?;
    if v < lo || v > hi {
        return Err(format!("Not a number of type {type_name}"));
    }
    Ok(v)
}

pub fn parse_bool(value: &str) -> Result<bool, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("Expected value to be either true or false".to_string())
    }
}

pub fn parse_int(value: &str, min: i64, max: i64) -> Result<i32, String> {
    let v = parse_integer(value.trim(), "INT", i32::MIN as i64, i32::MAX as i64)?;
    check_range_i(v, min, max)?;
    Ok(v as i32)
}

pub fn parse_long(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let v = parse_integer(value.trim(), "LONG", i64::MIN, i64::MAX)?;
    check_range_i(v, min, max)?;
    Ok(v)
}

pub fn parse_short(value: &str, min: i64, max: i64) -> Result<i16, String> {
    let v = parse_integer(value.trim(), "SHORT", i16::MIN as i64, i16::MAX as i64)?;
    check_range_i(v, min, max)?;
    Ok(v as i16)
}

pub fn parse_double(value: &str, min: f64, max: f64) -> Result<f64, String> {
    let v: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| !v.is_nan())
        .ok_or_else(|| "Not a number of type DOUBLE".to_string())?;
    if v < min {
        return Err(format!("Value must be at least {min}"));
    }
    if v > max {
        return Err(format!("Value must be no more than {max}"));
    }
    Ok(v)
}

/// Splits a LIST value: trimmed items, empty string is the empty list.
pub fn parse_list(value: &str) -> Vec<String> {
    let v = value.trim();
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

/// Checks `value` against `kind`; the error is Kafka's reason text.
pub fn check_value(kind: ValueKind, value: &str) -> Result<(), String> {
    match kind {
        ValueKind::Int { min, max } => parse_int(value, min, max).map(|_| ()),
        ValueKind::Long { min, max } => parse_long(value, min, max).map(|_| ()),
        ValueKind::Double { min, max } => parse_double(value, min, max).map(|_| ()),
        ValueKind::Bool => parse_bool(value).map(|_| ()),
        ValueKind::OneOf(options) => {
            if options.contains(&value.trim()) {
                Ok(())
            } else {
                Err(format!("String must be one of: {}", options.join(", ")))
            }
        }
        ValueKind::ListOf(options) => {
            let items = parse_list(value);
            if items.iter().all(|i| options.contains(&i.as_str())) {
                Ok(())
            } else {
                Err(format!("String must be one of: {}", options.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_parse_trims_and_accepts_plus_sign() {
        assert_eq!(parse_int(" +42 ", 0, 100), Ok(42));
    }

    #[test]
    fn int_overflow_is_not_a_number_of_type_int() {
        assert_eq!(
            parse_int("2147483648", i64::MIN, i64::MAX),
            Err("Not a number of type INT".to_string())
        );
    }

    #[test]
    fn range_errors_use_kafka_wording() {
        assert_eq!(
            parse_int("3", 14, i64::MAX),
            Err("Value must be at least 14".to_string())
        );
        assert_eq!(
            parse_double("1.5", 0.0, 1.0),
            Err("Value must be no more than 1".to_string())
        );
    }

    #[test]
    fn bool_is_case_insensitive_and_strict() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn list_of_rejects_unknown_item() {
        assert!(check_value(ValueKind::ListOf(&["compact", "delete"]), "compact, delete").is_ok());
        assert!(check_value(ValueKind::ListOf(&["compact", "delete"]), "compact,remove").is_err());
        assert_eq!(parse_list(""), Vec::<String>::new());
    }
}
