/// A Bayeux channel name (`/chat/room1`, `/meta/connect`, `/chat/*`, `/chat/**`) and its mapping to the gateway's
/// channels, so that one namespace serves every transport: `/chat/room1` is the gateway channel `chat.room1`.
///
/// A segment is 1 or more characters from the gateway's channel alphabet without `.` (`A-Z a-z 0-9 _ - : @ ~`),
/// since `.` joins segments in the gateway's name. The last segment may be `*` (exactly one segment at that place)
/// or `**` (one or more segments); `/*` and `/**` cover every channel of one segment, and every channel. Channels under `/meta/` and `/service/` are the protocol's own and never map to a
/// gateway channel.
public struct BayeuxChannel: Hashable, Sendable, CustomStringConvertible {
    /// What a channel name is.
    public enum Kind: Sendable, Hashable {
        /// `/meta/…`: the protocol's own (handshake, connect, subscribe, …).
        case meta
        /// `/service/…`: messages to the server only, never broadcast.
        case service
        /// A broadcast channel without wildcards.
        case broadcast
        /// Ends in `/*`: every channel with exactly one more segment.
        case wildcard
        /// Ends in `/**`: every channel with one or more segments more.
        case deepWildcard
    }

    /// The segments, without the wildcard.
    public let segments: [String]
    public let kind: Kind

    /// Parses a channel name; nil when it is not a valid Bayeux channel for this gateway.
    public init?(_ text: String, maxLength: Int = ChannelName.defaultMaxLength) {
        guard text.utf8.count <= maxLength + 1, text.hasPrefix("/") else { return nil }
        var parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { return nil }
        var kind = Kind.broadcast
        if parts.last == "**" {
            kind = .deepWildcard
            parts.removeLast()
        } else if parts.last == "*" {
            kind = .wildcard
            parts.removeLast()
        }
        guard !parts.isEmpty || kind != .broadcast else { return nil }  // `/*` and `/**`: every channel
        for part in parts where !part.utf8.allSatisfy({ $0 != UInt8(ascii: ".") && ChannelName.isAllowed($0) }) {
            return nil
        }
        if parts.first == "meta" {
            guard kind == .broadcast else { return nil }
            kind = .meta
        } else if parts.first == "service" {
            guard kind == .broadcast else { return nil }
            kind = .service
        }
        self.segments = parts
        self.kind = kind
    }

    public var description: String {
        let base = self.segments.isEmpty ? "" : "/" + self.segments.joined(separator: "/")
        switch self.kind {
        case .wildcard: return base + "/*"
        case .deepWildcard: return base + "/**"
        case .meta, .service, .broadcast: return base
        }
    }

    /// The gateway channel of a broadcast channel (`/chat/room1` → `chat.room1`); nil for the others.
    public func gatewayChannel(maxLength: Int = ChannelName.defaultMaxLength) -> ChannelName? {
        guard self.kind == .broadcast else { return nil }
        return try? ChannelName(validating: self.segments.joined(separator: "."), maxLength: maxLength)
    }

    /// The Bayeux channel of a gateway channel (`chat.room1` → `/chat/room1`); nil when the name has an empty segment
    /// (`a..b`, `.a`) or is one of the protocol's own.
    public init?(gateway channel: ChannelName, maxLength: Int = ChannelName.defaultMaxLength) {
        self.init("/" + channel.rawValue.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/"),
                  maxLength: maxLength)
        guard self.kind == .broadcast else { return nil }
    }

    /// Whether this channel (a wildcard, or an exact name) covers the broadcast channel `other`.
    public func matches(_ other: BayeuxChannel) -> Bool {
        guard other.kind == .broadcast else { return false }
        switch self.kind {
        case .broadcast:
            return self.segments == other.segments
        case .wildcard:
            return other.segments.count == self.segments.count + 1 && other.segments.starts(with: self.segments)
        case .deepWildcard:
            return other.segments.count > self.segments.count && other.segments.starts(with: self.segments)
        case .meta, .service:
            return false
        }
    }
}
