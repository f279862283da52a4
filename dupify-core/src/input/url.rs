//! The `image_url` policy and the address classifier behind it.
//!
//! Fetching a URL on behalf of a caller is a server-side request forgery risk: a URL that
//! names (or resolves to, or redirects to) `127.0.0.1`, an RFC 1918 host or the cloud
//! metadata service `169.254.169.254` would let a caller read the host's internal network.
//! [`UrlPolicy`] says what the fetcher (feature `url-fetch`) may reach; [`classify_ip`] sorts
//! every address a host name resolves to, and a URL is refused when **any** of them is not
//! allowed. The classifier looks through the IPv6 forms that carry an IPv4 address
//! (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`), so `::ffff:127.0.0.1` is loopback, not "some IPv6 address".
//!
//! This module is compiled with or without the feature: the policy is part of
//! [`InputLimits`](super::InputLimits), and the classifier is useful to a host application
//! that fetches images itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What an `image_url` fetch may do. The defaults are the safe ones: public addresses only,
/// at most 5 redirects, 5 s to connect, 30 s for the whole fetch (DNS, every redirect hop and
/// the body). The byte limit is [`InputLimits::max_bytes`](super::InputLimits::max_bytes).
///
/// Whatever the policy, unspecified, multicast, broadcast, documentation, reserved and
/// cloud-metadata addresses are never fetched, and neither is a URL with credentials or a
/// scheme other than `http`/`https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct UrlPolicy {
    /// Allow loopback addresses (`127.0.0.0/8`, `::1`). Off by default; meant for tests and
    /// local development against a server on the same machine.
    pub allow_loopback: bool,
    /// Allow private-network addresses: RFC 1918, link-local (except the metadata address),
    /// CGNAT `100.64.0.0/10`, IPv6 unique-local and site-local. Off by default; only for a
    /// deployment that must fetch from its own intranet and trusts every caller.
    pub allow_private_networks: bool,
    /// Redirects followed, each re-checked like the first URL. Default 5, at most 20.
    pub max_redirects: u32,
    /// Time to resolve a host and open a connection, per hop. Default 5 s.
    pub connect_timeout: Duration,
    /// Time for the whole fetch: resolution, every redirect hop and the body. Default 30 s.
    pub total_timeout: Duration,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private_networks: false,
            max_redirects: Self::DEFAULT_MAX_REDIRECTS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            total_timeout: Self::DEFAULT_TOTAL_TIMEOUT,
        }
    }
}

impl UrlPolicy {
    /// 5 redirects.
    pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
    /// Upper bound accepted by [`UrlPolicy::validate`].
    pub const MAX_REDIRECTS_LIMIT: u32 = 20;
    /// 5 seconds.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// 30 seconds.
    pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

    /// Rejects zero timeouts and more than [`UrlPolicy::MAX_REDIRECTS_LIMIT`] redirects.
    pub fn validate(&self) -> Result<()> {
        if self.connect_timeout.is_zero() {
            return Err(Error::invalid("url.connect_timeout", "must be positive"));
        }
        if self.total_timeout.is_zero() {
            return Err(Error::invalid("url.total_timeout", "must be positive"));
        }
        if self.max_redirects > Self::MAX_REDIRECTS_LIMIT {
            return Err(Error::invalid(
                "url.max_redirects",
                format!("must be at most {}", Self::MAX_REDIRECTS_LIMIT),
            ));
        }
        Ok(())
    }

    /// Whether this policy lets a fetch connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        match classify_ip(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private
            | AddressClass::LinkLocal
            | AddressClass::SharedAddressSpace
            | AddressClass::UniqueLocal => self.allow_private_networks,
            AddressClass::CloudMetadata
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Broadcast
            | AddressClass::Documentation
            | AddressClass::Reserved => false,
        }
    }
}

/// Where an IP address points, for the purpose of deciding whether to fetch from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressClass {
    /// Globally routable unicast.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 site-local `fec0::/10`, local-use
    /// NAT64 `64:ff9b:1::/48`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10` (the metadata address has its own class).
    LinkLocal,
    /// Carrier-grade NAT `100.64.0.0/10` (RFC 6598).
    SharedAddressSpace,
    /// IPv6 unique-local `fc00::/7`.
    UniqueLocal,
    /// Cloud instance-metadata services: `169.254.169.254` (AWS, GCP, Azure, OCI…),
    /// `169.254.170.2` (ECS task metadata), `100.100.100.200` (Alibaba), `fd00:ec2::254`.
    CloudMetadata,
    /// `0.0.0.0/8`, `::` (connects to the local host on most systems).
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Not globally routable for another reason: `240/4`, benchmarking `198.18/15`, IETF
    /// protocol assignments `192.0.0/24` and `2001::/23` (Teredo included), 6to4 relay
    /// `192.88.99/24`, discard-only `100::/64`, and the remaining unassigned IPv6 forms.
    Reserved,
}

impl AddressClass {
    /// Whether the address is globally routable unicast.
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// A short English description for error messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::SharedAddressSpace => "a carrier-grade NAT address",
            AddressClass::UniqueLocal => "an IPv6 unique-local address",
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// Classifies an address, looking through IPv6 forms that embed an IPv4 address.
pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    let n = u32::from(ip);
    let within = |net: u32, prefix: u32| n >> (32 - prefix) == net >> (32 - prefix);
    if matches!(
        o,
        [169, 254, 169, 254] | [169, 254, 170, 2] | [100, 100, 100, 200]
    ) {
        AddressClass::CloudMetadata
    } else if o[0] == 0 {
        AddressClass::Unspecified
    } else if o[0] == 127 {
        AddressClass::Loopback
    } else if o[0] == 10 || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16) {
        AddressClass::Private
    } else if within(0xA9FE_0000, 16) {
        AddressClass::LinkLocal
    } else if within(0x6440_0000, 10) {
        AddressClass::SharedAddressSpace
    } else if n == u32::MAX {
        AddressClass::Broadcast
    } else if within(0xE000_0000, 4) {
        AddressClass::Multicast
    } else if within(0xC000_0200, 24) || within(0xC633_6400, 24) || within(0xCB00_7100, 24) {
        AddressClass::Documentation
    } else if within(0xF000_0000, 4)
        || within(0xC612_0000, 15)
        || within(0xC000_0000, 24)
        || within(0xC058_6300, 24)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let n = u128::from(ip);
    let within = |net: u128, prefix: u32| n >> (128 - prefix) == net >> (128 - prefix);
    let low_v4 = Ipv4Addr::from((n & 0xFFFF_FFFF) as u32);
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated but still routed to the
    // IPv4 address by some stacks): the IPv4 address decides.
    if s[..5] == [0; 5] && (s[5] == 0xFFFF || s[5] == 0) {
        return classify_v4(low_v4);
    }
    // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765).
    if s[..4] == [0; 4] && s[4] == 0xFFFF && s[5] == 0 {
        return classify_v4(low_v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the gateway connects to the IPv4.
    if within(0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return classify_v4(low_v4);
    }
    // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): translated inside a private network.
    if within(0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48) {
        return AddressClass::Private;
    }
    // 6to4 2002:AABB:CCDD::/48 routes to the IPv4 address AA.BB.CC.DD.
    if s[0] == 0x2002 {
        let embedded = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
        return classify_v4(embedded);
    }
    if n == 0xfd00_0ec2_0000_0000_0000_0000_0000_0254 {
        return AddressClass::CloudMetadata;
    }
    if within(0xff00 << 112, 8) {
        AddressClass::Multicast
    } else if within(0xfe80 << 112, 10) {
        AddressClass::LinkLocal
    } else if within(0xfec0 << 112, 10) {
        AddressClass::Private
    } else if within(0xfc00 << 112, 7) {
        AddressClass::UniqueLocal
    } else if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        AddressClass::Documentation
    } else if within(0x0100 << 112, 64) || within(0x2001 << 112, 23) {
        AddressClass::Reserved
    } else if within(0x2000 << 112, 3) {
        // 2000::/3 is the only globally routable unicast block allocated today.
        AddressClass::Public
    } else {
        AddressClass::Reserved
    }
}

dupify_types::setters! { UrlPolicy {
    /// Allows or refuses loopback addresses (tests and local development only).
    with_allow_loopback(allow_loopback: bool),
    /// Allows or refuses private-network addresses (trusted intranet deployments only).
    with_allow_private_networks(allow_private_networks: bool),
    /// Sets the number of redirects followed (0 = none).
    with_max_redirects(max_redirects: u32),
    /// Sets the per-hop resolve + connect timeout.
    with_connect_timeout(connect_timeout: Duration),
    /// Sets the timeout of the whole fetch.
    with_total_timeout(total_timeout: Duration),
} }

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> AddressClass {
        classify_ip(s.parse::<Ipv4Addr>().expect("test address").into())
    }
    fn v6(s: &str) -> AddressClass {
        classify_ip(s.parse::<Ipv6Addr>().expect("test address").into())
    }

    #[test]
    fn ipv4_classes() {
        use AddressClass::*;
        let cases = [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("169.253.255.255", Public),
            ("192.167.255.255", Public),
            ("223.255.255.255", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.0.1", LinkLocal),
            ("169.254.169.253", LinkLocal),
            ("169.254.169.254", CloudMetadata),
            ("169.254.170.2", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.255", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.200", Documentation),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
        ];
        for (addr, want) in cases {
            assert_eq!(v4(addr), want, "{addr}");
        }
    }

    #[test]
    fn ipv6_classes() {
        use AddressClass::*;
        let cases = [
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001:81c::200e", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fec0::1", Private),
            ("fc00::1", UniqueLocal),
            ("fdff:ffff::1", UniqueLocal),
            ("fd00:ec2::254", CloudMetadata),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff:0fff::1", Documentation),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("4000::1", Reserved),
            ("64:ff9b:1::a00:1", Private),
        ];
        for (addr, want) in cases {
            assert_eq!(v6(addr), want, "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_ipv4_are_judged_by_the_ipv4() {
        use AddressClass::*;
        let cases = [
            // IPv4-mapped.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:192.168.0.1", Private),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:8.8.8.8", Public),
            // IPv4-compatible (deprecated).
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::169.254.169.254", CloudMetadata),
            ("::8.8.8.8", Public),
            // IPv4-translated.
            ("::ffff:0:127.0.0.1", Loopback),
            // NAT64 well-known prefix.
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("64:ff9b::8.8.8.8", Public),
            // 6to4.
            ("2002:7f00:1::1", Loopback),
            ("2002:c0a8:101::1", Private),
            ("2002:a9fe:a9fe::", CloudMetadata),
            ("2002:808:808::1", Public),
        ];
        for (addr, want) in cases {
            assert_eq!(v6(addr), want, "{addr}");
        }
    }

    #[test]
    fn default_policy_allows_only_public_addresses() {
        let p = UrlPolicy::default();
        assert!(p.validate().is_ok());
        assert_eq!(
            (p.max_redirects, p.connect_timeout, p.total_timeout),
            (5, Duration::from_secs(5), Duration::from_secs(30))
        );
        for ok in ["8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(p.permits(ok.parse().expect("test address")), "{ok}");
        }
        for blocked in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "fd12::1",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(
                !p.permits(blocked.parse().expect("test address")),
                "{blocked}"
            );
        }
    }

    #[test]
    fn opt_ins_open_only_their_own_classes() {
        let lo = UrlPolicy::default().with_allow_loopback(true);
        assert!(lo.permits("127.0.0.1".parse().expect("addr")));
        assert!(lo.permits("::1".parse().expect("addr")));
        assert!(!lo.permits("10.0.0.1".parse().expect("addr")));
        assert!(!lo.permits("169.254.169.254".parse().expect("addr")));

        let private = UrlPolicy::default().with_allow_private_networks(true);
        assert!(!private.permits("127.0.0.1".parse().expect("addr")));
        for ok in [
            "10.0.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd12::1",
            "fe80::1",
        ] {
            assert!(private.permits(ok.parse().expect("addr")), "{ok}");
        }
        // Never, whatever the opt-ins.
        let all = private.with_allow_loopback(true);
        for never in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "239.1.1.1",
            "255.255.255.255",
            "203.0.113.1",
            "240.0.0.1",
        ] {
            assert!(!all.permits(never.parse().expect("addr")), "{never}");
        }
    }

    #[test]
    fn policy_validation() {
        let p = UrlPolicy::default();
        assert!(p.with_connect_timeout(Duration::ZERO).validate().is_err());
        assert!(p.with_total_timeout(Duration::ZERO).validate().is_err());
        assert!(p.with_max_redirects(21).validate().is_err());
        assert!(p.with_max_redirects(0).validate().is_ok());
        let e = p
            .with_max_redirects(100)
            .validate()
            .expect_err("over the limit");
        assert_eq!(e.code(), "invalid_parameter");
    }

    #[test]
    fn policy_serde_fills_missing_fields_with_defaults() {
        let p: UrlPolicy = serde_json::from_str(r#"{"allow_loopback": true}"#).expect("valid json");
        assert_eq!(p, UrlPolicy::default().with_allow_loopback(true));
    }
}
