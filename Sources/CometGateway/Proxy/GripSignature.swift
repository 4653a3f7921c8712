import CometCore
import Crypto
import Foundation
import NIOCore

/// The `Grip-Sig` header on proxied requests: a JWT (HS256) with `iss` and `exp` claims, signed with
/// `proxy.grip_signature_key`, so that the application can tell a request came through the gateway (as Pushpin signs
/// with `sig_key`; `gripcontrol.validate_sig(token, key)` accepts it).
struct GripSignature: Sendable {
    let key: [UInt8]
    let issuer: String
    /// How long a signature is valid.
    static let lifetime: TimeInterval = 3600

    init(key: String, issuer: String) {
        self.key = Array(key.utf8)
        self.issuer = issuer
    }

    /// A token valid from `now` for ``lifetime``.
    func token(now: Date = Date()) -> String {
        let header = Self.base64URL(Array(#"{"typ":"JWT","alg":"HS256"}"#.utf8))
        let expiry = Int(now.timeIntervalSince1970 + Self.lifetime)
        var issuer = ByteBuffer()
        JSONEncoding.writeString(self.issuer, into: &issuer)
        let claims = Self.base64URL(Array(#"{"iss":\#(String(buffer: issuer)),"exp":\#(expiry)}"#.utf8))
        let signingInput = header + "." + claims
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: self.key))
        return signingInput + "." + Self.base64URL(Array(mac))
    }

    /// Base64url without padding (RFC 7515, section 2).
    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Base64.encode(bytes)
        text = String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
