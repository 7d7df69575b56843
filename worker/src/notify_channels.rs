//! Which notification channels this worker writes rows for, read from the
//! environment: `NOTIFY_CHANNELS`, or each channel's own variable.

use ledgerhook_domain::NotifyChannels;
use ledgerhook_domain::notification_channels::{
    CHANNELS_VAR, DISCORD_URL_VAR, FEISHU_URL_VAR, SMTP_URL_VAR,
};
use ledgerhook_runtime::config::EnvReader;

/// `NOTIFY_CHANNELS` when it is set (even blank, which means none: the
/// reader must pass a blank value through for that); otherwise by the
/// presence of each channel's variable (blank counts as absent). An
/// unknown name is recorded as invalid, naming the variable.
pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> NotifyChannels {
    if let Listed(Some(listed)) = env.parsed_or(CHANNELS_VAR, Listed(None)) {
        return listed;
    }
    NotifyChannels {
        email: env.optional(SMTP_URL_VAR).is_some(),
        discord: env.optional(DISCORD_URL_VAR).is_some(),
        feishu: env.optional(FEISHU_URL_VAR).is_some(),
    }
}

/// `NOTIFY_CHANNELS` as read: `None` when unset.
struct Listed(Option<NotifyChannels>);

impl std::str::FromStr for Listed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        NotifyChannels::parse_list(text).map(|c| Self(Some(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_alone_configures_a_channel_and_blank_is_absent() {
        let mut env = EnvReader::new(|name: &str| match name {
            DISCORD_URL_VAR => Some("https://discord.example/api/webhooks/1/x".to_owned()),
            FEISHU_URL_VAR => Some("  ".to_owned()),
            _ => None,
        });
        let channels = from_env(&mut env);
        assert_eq!(
            channels,
            NotifyChannels {
                email: false,
                discord: true,
                feishu: false
            }
        );
        assert!(env.finish().is_ok());
        assert!(NotifyChannels::default().is_empty());
    }

    fn read(pairs: &[(&str, &str)]) -> (NotifyChannels, Result<(), String>) {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut env = EnvReader::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        });
        let channels = from_env(&mut env);
        (channels, env.finish().map_err(|e| e.to_string()))
    }

    #[test]
    fn the_list_when_set_needs_no_secret_and_overrides_presence() {
        let secrets = [
            (SMTP_URL_VAR, "smtp://u:hunter2@mail.example"),
            (DISCORD_URL_VAR, "https://discord.example/api/webhooks/1/x"),
        ];
        let (channels, ok) = read(&[(CHANNELS_VAR, "feishu, Email")]);
        assert_eq!(ok, Ok(()));
        assert_eq!(
            channels,
            NotifyChannels {
                email: true,
                discord: false,
                feishu: true
            }
        );
        let mut with_secrets = secrets.to_vec();
        with_secrets.push((CHANNELS_VAR, "discord"));
        assert_eq!(
            read(&with_secrets).0,
            NotifyChannels {
                email: false,
                discord: true,
                feishu: false
            }
        );
        for nothing in ["", "  ", "none", "NONE"] {
            let mut env = secrets.to_vec();
            env.push((CHANNELS_VAR, nothing));
            assert_eq!(
                read(&env),
                (NotifyChannels::default(), Ok(())),
                "{nothing:?}"
            );
        }
        // Unset: today's rule, by presence.
        assert_eq!(
            read(&secrets).0,
            NotifyChannels {
                email: true,
                discord: true,
                feishu: false
            }
        );
    }

    #[test]
    fn an_unknown_channel_name_is_an_error_naming_the_variable() {
        let (_, result) = read(&[(CHANNELS_VAR, "email,slack")]);
        let message = result.unwrap_err();
        assert!(message.contains(CHANNELS_VAR), "{message}");
        assert!(message.contains("slack"), "{message}");
    }
}
