/// An error that maps to an HTTP response: a status code and a short reason that is safe to send to a client.
///
/// Parsers in ``CometCore`` throw this for hostile or malformed input; the I/O layer turns it into a response
/// with the status and the reason as a short plain-text body.
public struct GatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of error, which fixes the HTTP status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The HTTP status code sent for this kind of error.
        public let status: Int
        /// The standard reason phrase of ``status``.
        public let phrase: String

        /// A code for a status not listed here.
        public init(_ status: Int, _ phrase: String) {
            self.status = status
            self.phrase = phrase
        }

        public static let badRequest = Code(400, "Bad Request")
        public static let unauthorized = Code(401, "Unauthorized")
        public static let notFound = Code(404, "Not Found")
        public static let methodNotAllowed = Code(405, "Method Not Allowed")
        public static let requestTimeout = Code(408, "Request Timeout")
        public static let gone = Code(410, "Gone")
        public static let payloadTooLarge = Code(413, "Content Too Large")
        public static let uriTooLong = Code(414, "URI Too Long")
        public static let unsupportedMediaType = Code(415, "Unsupported Media Type")
        public static let headersTooLarge = Code(431, "Request Header Fields Too Large")
        public static let internalServerError = Code(500, "Internal Server Error")
        public static let badGateway = Code(502, "Bad Gateway")
        public static let serviceUnavailable = Code(503, "Service Unavailable")
        public static let gatewayTimeout = Code(504, "Gateway Timeout")

        public var description: String { "\(self.status) \(self.phrase)" }
    }

    /// The kind of error.
    public let code: Code
    /// A short, human-readable reason (one line, no user data beyond what is needed to fix the request).
    public let reason: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of error.
    ///   - reason: A short reason, sent to the client as the response body.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(self.code): \(self.reason)" }

    static func badRequest(_ reason: String) -> GatewayError { GatewayError(.badRequest, reason) }
}
