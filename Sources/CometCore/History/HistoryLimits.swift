/// Bounds on what a channel retains for resume.
public struct HistoryLimits: Sendable, Hashable {
    /// The most messages retained per channel (0 disables history).
    public var maxMessages: Int
    /// The most payload bytes retained per channel.
    public var maxBytes: Int
    /// How long a message is retained, in seconds.
    public var maxAge: Double

    /// Creates limits; the defaults are 100 messages, 1 MiB and 10 minutes per channel.
    public init(maxMessages: Int = 100, maxBytes: Int = 1 << 20, maxAge: Double = 600) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.maxAge = maxAge
    }
}
