/// A set of gateway channels named by a prefix: every channel one segment below it (`chat.*`), or any number of
/// segments below it (`chat.**`); without a prefix, every channel of one segment (`*`) or every channel (`**`).
/// Segments are separated by `.` and are never empty (a Bayeux wildcard subscription such as `/chat/*` is one of
/// these).
public struct ChannelPattern: Hashable, Sendable, CustomStringConvertible {
    /// The channels' common first segments (`chat`), a valid channel name; nil: the root.
    public let prefix: ChannelName?
    /// Any depth below the prefix (`**`), or exactly one more segment (`*`).
    public let deep: Bool

    /// Creates a pattern.
    public init(prefix: ChannelName?, deep: Bool) {
        self.prefix = prefix
        self.deep = deep
    }

    /// Whether `channel` is one of this pattern's channels: it starts with the prefix and a `.` (when there is a
    /// prefix), and the rest is one non-empty segment (or, for a deep pattern, non-empty segments).
    public func matches(_ channel: ChannelName) -> Bool {
        var name = channel.rawValue
        var prefix = self.prefix?.rawValue ?? ""
        let deep = self.deep
        return name.withUTF8 { name in
            prefix.withUTF8 { prefix in
                let start = prefix.isEmpty ? 0 : prefix.count + 1
                if !prefix.isEmpty {
                    guard name.count > start, name[prefix.count] == UInt8(ascii: "."),
                          UnsafeBufferPointer(rebasing: name[..<prefix.count]).elementsEqual(prefix)
                    else { return false }
                }
                var previous = UInt8(ascii: ".")
                for index in start..<name.count {
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

    /// `prefix.*` or `prefix.**` (`*` or `**` for the root).
    public var description: String {
        (self.prefix.map { $0.rawValue + "." } ?? "") + (self.deep ? "**" : "*")
    }
}
