/// Why a Redis command did not give a value.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Redis answered with an error reply (`-ERR …`).
    case reply(String)
    /// There is no connection to Redis now (it is down or being reconnected): fail fast.
    case unavailable
    /// The connection closed before the answer came.
    case connectionClosed
    /// Redis sent bytes that are not RESP, or bigger than the bounds: the connection was closed.
    case protocolError(String)
    /// Redis did not answer in time.
    case timeout
    /// The answer did not have the expected shape.
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .reply(let text): "Redis error: \(text)"
        case .unavailable: "Redis unavailable"
        case .connectionClosed: "Redis connection closed"
        case .protocolError(let reason): "Redis protocol error: \(reason)"
        case .timeout: "Redis timed out"
        case .unexpectedReply(let what): "unexpected Redis reply: \(what)"
        }
    }
}
