//! Serde and `Display` for validated string newtypes: serialize as the string, deserialize
//! through the validating constructor so invalid input never becomes a value.

/// Implements `Serialize`, `Deserialize` (through `$ctor`) and `Display` (through `as_str`).
macro_rules! string_newtype_serde {
    ($ty:ident, $ctor:path) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
                $ctor(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_newtype_serde;
