//! The channels a grant is announced on, and which of them are configured.
//!
//! The worker decides which rows to write from `NOTIFY_CHANNELS`
//! (`email,discord,feishu`; blank or `none`: nothing) when it is set, so
//! workers need none of the notifier's secrets. Without it, from the
//! presence of the variables the notifier sends with (it never sends, and
//! never uses their values), so one environment shared by both still works.
//! Nothing configured: nothing is written, so an installation without
//! notifications pays nothing for them.

use std::fmt;

/// `NOTIFY_SMTP_URL`: the mail server (its presence turns on the buyer's email).
pub const SMTP_URL_VAR: &str = "NOTIFY_SMTP_URL";
/// `NOTIFY_DISCORD_WEBHOOK_URL`: a Discord channel's incoming webhook.
pub const DISCORD_URL_VAR: &str = "NOTIFY_DISCORD_WEBHOOK_URL";
/// `NOTIFY_FEISHU_WEBHOOK_URL`: a Feishu group's custom bot.
pub const FEISHU_URL_VAR: &str = "NOTIFY_FEISHU_WEBHOOK_URL";
/// `NOTIFY_CHANNELS`: the worker's list of channels, comma-separated.
pub const CHANNELS_VAR: &str = "NOTIFY_CHANNELS";

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

    /// The notifier's variable that turns this channel on.
    pub fn settings_var(self) -> &'static str {
        match self {
            Self::Email => SMTP_URL_VAR,
            Self::Discord => DISCORD_URL_VAR,
            Self::Feishu => FEISHU_URL_VAR,
        }
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
    /// A `NOTIFY_CHANNELS` value: names separated by commas (spaces
    /// allowed); blank or `none` is no channel.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        let mut channels = Self::default();
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(channels);
        }
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Channel::parse(&name.to_ascii_lowercase()) {
                Some(Channel::Email) => channels.email = true,
                Some(Channel::Discord) => channels.discord = true,
                Some(Channel::Feishu) => channels.feishu = true,
                None => {
                    return Err(format!(
                        "unknown channel {name:?} (known: email, discord, feishu, or none)"
                    ));
                }
            }
        }
        Ok(channels)
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
