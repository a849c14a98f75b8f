//! Settings given outside the configuration file: `countersign serve`'s
//! flags and the `COUNTERSIGN_*` environment variables. A flag wins over
//! its variable, a variable over the file, the file over the defaults; an
//! empty variable counts as unset. Relative paths given this way are
//! relative to the current directory, not to the configuration file.

use super::error::ConfigError;

/// The variable naming the configuration file, when `--config` is not given.
pub const CONFIG_ENV: &str = "COUNTERSIGN_CONFIG";
/// The variable holding the listen address (`listen:`).
pub const LISTEN_ENV: &str = "COUNTERSIGN_LISTEN";
/// The variable holding the public URL (`public_url:`).
pub const PUBLIC_URL_ENV: &str = "COUNTERSIGN_PUBLIC_URL";
/// The variable holding the data directory (`data_dir:`).
pub const DATA_DIR_ENV: &str = "COUNTERSIGN_DATA_DIR";
/// The variable holding the store URL (`store:`).
pub const STORE_ENV: &str = "COUNTERSIGN_STORE";

/// One value given outside the file, with where it came from, so an error
/// can name the flag or variable to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as given.
    pub value: String,
    /// `--listen`, `COUNTERSIGN_LISTEN`, …
    pub origin: &'static str,
}

/// The settings that override the configuration file's; `None` leaves the
/// file's value (or the default) in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Overrides `listen`.
    pub listen: Option<Setting>,
    /// Overrides `public_url`.
    pub public_url: Option<Setting>,
    /// Overrides `data_dir`.
    pub data_dir: Option<Setting>,
    /// Overrides `store`.
    pub store: Option<Setting>,
}

impl Overrides {
    /// The `COUNTERSIGN_*` variables of this process. A variable that is
    /// not valid UTF-8 is an error rather than silently ignored.
    pub fn from_env() -> Result<Self, ConfigError> {
        for name in [LISTEN_ENV, PUBLIC_URL_ENV, DATA_DIR_ENV, STORE_ENV] {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(ConfigError::Invalid(format!(
                    "the environment variable {name} is not valid UTF-8"
                )));
            }
        }
        Ok(Self::from_lookup(|name| std::env::var(name).ok()))
    }

    /// The variables as `lookup` reads them (tests pass a map; the process
    /// environment is [`Overrides::from_env`]). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &'static str| {
            lookup(name).filter(|v| !v.is_empty()).map(|value| Setting {
                value,
                origin: name,
            })
        };
        Self {
            listen: get(LISTEN_ENV),
            public_url: get(PUBLIC_URL_ENV),
            data_dir: get(DATA_DIR_ENV),
            store: get(STORE_ENV),
        }
    }

    /// These settings where given, `lower`'s elsewhere: flags over the
    /// environment is `flags.over(env)`.
    #[must_use]
    pub fn over(self, lower: Self) -> Self {
        Self {
            listen: self.listen.or(lower.listen),
            public_url: self.public_url.or(lower.public_url),
            data_dir: self.data_dir.or(lower.data_dir),
            store: self.store.or(lower.store),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_variables_are_unset_and_flags_win() {
        let env = Overrides::from_lookup(|name| match name {
            LISTEN_ENV => Some("0.0.0.0:9000".to_owned()),
            PUBLIC_URL_ENV => Some(String::new()),
            STORE_ENV => Some("sqlite:///data/x.db".to_owned()),
            _ => None,
        });
        assert_eq!(env.listen.as_ref().map(|s| s.origin), Some(LISTEN_ENV));
        assert_eq!(env.public_url, None);
        assert_eq!(env.data_dir, None);
        let flags = Overrides {
            listen: Some(Setting {
                value: "127.0.0.1:1".to_owned(),
                origin: "--listen",
            }),
            ..Overrides::default()
        };
        let both = flags.over(env);
        assert_eq!(both.listen.map(|s| s.value), Some("127.0.0.1:1".to_owned()));
        assert_eq!(
            both.store.map(|s| s.value),
            Some("sqlite:///data/x.db".to_owned())
        );
    }
}
