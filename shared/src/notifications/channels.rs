//! The channels a grant is announced on, and which of them are configured.
//!
//! The worker decides which rows to write from the same environment
//! variables the notifier sends with, by their presence only (it never
//! sends, and never reads their values). Nothing configured: nothing is
//! written, so an installation without notifications pays nothing for them.

use std::fmt;

use crate::config::EnvReader;

/// `NOTIFY_SMTP_URL`: the mail server (its presence turns on the buyer's email).
pub const SMTP_URL_VAR: &str = "NOTIFY_SMTP_URL";
/// `NOTIFY_DISCORD_WEBHOOK_URL`: a Discord channel's incoming webhook.
pub const DISCORD_URL_VAR: &str = "NOTIFY_DISCORD_WEBHOOK_URL";
/// `NOTIFY_FEISHU_WEBHOOK_URL`: a Feishu group's custom bot.
pub const FEISHU_URL_VAR: &str = "NOTIFY_FEISHU_WEBHOOK_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// To the buyer, at the address the payment event carried.
    Email,
    /// To the team.
    Discord,
    /// To the team.
    Feishu,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::Email, Self::Discord, Self::Feishu];

    /// The value stored in `notifications.channel` and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Discord => "discord",
            Self::Feishu => "feishu",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which channels are configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyChannels {
    pub email: bool,
    pub discord: bool,
    pub feishu: bool,
}

impl NotifyChannels {
    /// By the presence of each channel's variable (blank counts as absent).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        Self {
            email: env.optional(SMTP_URL_VAR).is_some(),
            discord: env.optional(DISCORD_URL_VAR).is_some(),
            feishu: env.optional(FEISHU_URL_VAR).is_some(),
        }
    }

    pub fn is_empty(self) -> bool {
        !(self.email || self.discord || self.feishu)
    }

    pub fn has(self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Discord => self.discord,
            Channel::Feishu => self.feishu,
        }
    }

    /// The channels a grant is announced on: the team's chats, and the
    /// buyer's email only when the payment event gave an address.
    pub fn for_grant(self, has_recipient: bool) -> impl Iterator<Item = Channel> {
        Channel::ALL
            .into_iter()
            .filter(move |&c| self.has(c) && (c != Channel::Email || has_recipient))
    }

    /// The configured channels' names, for the notifier's claim.
    pub fn names(self) -> Vec<&'static str> {
        Channel::ALL
            .into_iter()
            .filter(|&c| self.has(c))
            .map(Channel::as_str)
            .collect()
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
        let channels = NotifyChannels::from_env(&mut env);
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

    #[test]
    fn email_only_for_a_grant_with_a_recipient() {
        let all = NotifyChannels {
            email: true,
            discord: true,
            feishu: true,
        };
        let with: Vec<Channel> = all.for_grant(true).collect();
        assert_eq!(with, Channel::ALL);
        let without: Vec<Channel> = all.for_grant(false).collect();
        assert_eq!(without, [Channel::Discord, Channel::Feishu]);
        assert_eq!(NotifyChannels::default().for_grant(true).count(), 0);
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
    }
}
