import CometCore
import Crypto
import Foundation

/// Signed channel tokens (`auth.channel_token_key`): an application that cannot serve an authorization endpoint
/// signs the channels a user may subscribe to, and the gateway checks the signature and the expiry.
///
/// A token is `EXPIRY.SIGNATURE`: `EXPIRY` in Unix seconds, `SIGNATURE` the lowercase hex HMAC-SHA256, with the key,
/// of the channel names sorted (byte order) and joined with `,`, a newline, and `EXPIRY`. A subscription's token must
/// cover exactly its channels; the comparison runs in constant time.
struct ChannelTokens: Sendable {
    let key: [UInt8]

    init(key: String) {
        self.key = Array(key.utf8)
    }

    /// What a token signs.
    static func message(channels: [ChannelName], expiry: Int) -> String {
        Self.message(names: channels.map(\.rawValue), expiry: expiry)
    }

    /// What a token for channels or wildcard patterns (`chat.*`) signs.
    static func message(names: [String], expiry: Int) -> String {
        names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.joined(separator: ",")
            + "\n" + String(expiry)
    }

    /// A token for `channels` until `expiry` (for tests and tools; applications make their own).
    func token(channels: [ChannelName], expiry: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(Self.message(channels: channels, expiry: expiry).utf8),
                                                  using: SymmetricKey(data: self.key))
        return "\(expiry)." + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Nil when `token` is valid for exactly `channels` at `now`; otherwise why not (a short reason, never the token).
    func refusal(_ token: String?, channels: [ChannelName], now: Date = Date()) -> String? {
        self.refusal(token, names: channels.map(\.rawValue), now: now)
    }

    /// Nil when `token` is valid for exactly the channels or patterns `names` at `now`; otherwise why not.
    func refusal(_ token: String?, names: [String], now: Date = Date()) -> String? {
        guard let token, !token.isEmpty else { return "a channel token is required (?token= or X-Comet-Token)" }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let expiry = Int(parts[0]), let signature = Self.hexBytes(parts[1]),
              signature.count == SHA256.byteCount
        else { return "malformed channel token" }
        guard Double(expiry) > now.timeIntervalSince1970 else { return "channel token expired" }
        let message = Array(Self.message(names: names, expiry: expiry).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: SymmetricKey(data: self.key))
        else { return "channel token does not match these channels" }
        return nil
    }

    private static func hexBytes(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, digits.count <= 128 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
