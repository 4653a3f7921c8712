/// A set of gateway channels named by a prefix: every channel one segment below it (`chat.*`), or any number of
/// segments below it (`chat.**`). Segments are separated by `.` (a Bayeux wildcard subscription such as `/chat/*`
/// is one of these).
public struct ChannelPattern: Hashable, Sendable, CustomStringConvertible {
    /// The channels' common first segments (`chat`), a valid channel name.
    public let prefix: ChannelName
    /// Any depth below the prefix (`**`), or exactly one more segment (`*`).
    public let deep: Bool

    /// Creates a pattern.
    public init(prefix: ChannelName, deep: Bool) {
        self.prefix = prefix
        self.deep = deep
    }

    /// Whether `channel` is one of this pattern's channels: it starts with the prefix and a `.`, and the rest is one
    /// non-empty segment (or, for a deep pattern, non-empty segments).
    public func matches(_ channel: ChannelName) -> Bool {
        var name = channel.rawValue
        var prefix = self.prefix.rawValue
        let deep = self.deep
        return name.withUTF8 { name in
            prefix.withUTF8 { prefix in
                guard name.count > prefix.count + 1, name[prefix.count] == UInt8(ascii: "."),
                      UnsafeBufferPointer(rebasing: name[..<prefix.count]).elementsEqual(prefix)
                else { return false }
                var previous = UInt8(ascii: ".")
                for index in (prefix.count + 1)..<name.count {
                    let byte = name[index]
                    if byte == UInt8(ascii: ".") {
                        if !deep || previous == UInt8(ascii: ".") { return false }
                    }
                    previous = byte
                }
                return previous != UInt8(ascii: ".")
            }
        }
    }

    /// `prefix.*` or `prefix.**`.
    public var description: String { self.prefix.rawValue + (self.deep ? ".**" : ".*") }
}
