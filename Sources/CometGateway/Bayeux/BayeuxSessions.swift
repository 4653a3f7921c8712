import CometCore
import NIOConcurrencyHelpers
import NIOCore

/// The Bayeux connection types the gateway serves.
enum BayeuxTransport: String, Sendable, CaseIterable {
    case longPolling = "long-polling"
    case callbackPolling = "callback-polling"
    case webSocket = "websocket"

    /// Every type's name, in the order the handshake advertises them.
    static let names = BayeuxTransport.allCases.map(\.rawValue)
}

/// This node's Bayeux clients by `clientId`. Each ``BayeuxSession`` lives on the event loop where its handshake
/// arrived; a request that arrives on another loop is carried out on the session's loop.
final class BayeuxSessions: Sendable {
    /// Where a session lives.
    struct Handle: Sendable {
        let loop: any EventLoop
        let session: NIOLoopBound<BayeuxSession>
    }

    private let table = NIOLockedValueBox<[String: Handle]>([:])
    private let maxSessions: Int

    init(maxSessions: Int) {
        self.maxSessions = maxSessions
    }

    /// A new, unguessable client id: 32 characters from `A-Z a-z 0-9` (about 190 bits from the system's secure
    /// generator).
    static func makeClientID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<32).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] },
                      as: UTF8.self)
    }

    /// Registers a session; false when the node holds ``maxSessions`` already.
    func insert(_ id: String, _ handle: Handle) -> Bool {
        self.table.withLockedValue { table in
            guard table.count < self.maxSessions else { return false }
            table[id] = handle
            return true
        }
    }

    func lookup(_ id: String) -> Handle? {
        self.table.withLockedValue { $0[id] }
    }

    func remove(_ id: String) {
        self.table.withLockedValue { _ = $0.removeValue(forKey: id) }
    }

    var count: Int { self.table.withLockedValue { $0.count } }

    /// Every session (a graceful shutdown answers their held connects).
    var all: [Handle] { self.table.withLockedValue { Array($0.values) } }
}
