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

    /// A client id as the table keys it: its 32 bytes as four words (hashed and compared without a string).
    struct Key: Hashable, Sendable {
        private let words: (UInt64, UInt64, UInt64, UInt64)

        /// The key of `id`; nil when it cannot be one of this node's ids (not 32 bytes long).
        init?(_ id: String) {
            var id = id
            guard let words = id.withUTF8({ bytes -> (UInt64, UInt64, UInt64, UInt64)? in
                guard bytes.count == BayeuxSessions.idLength else { return nil }
                let raw = UnsafeRawBufferPointer(bytes)
                return (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                        raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                        raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                        raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            }) else { return nil }
            self.words = words
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
                && lhs.words.3 == rhs.words.3
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.words.0)
            hasher.combine(self.words.1)
            hasher.combine(self.words.2)
            hasher.combine(self.words.3)
        }
    }

    /// The length of every client id this node makes.
    static let idLength = 32

    private let table = NIOLockedValueBox<[Key: Handle]>([:])
    private let maxSessions: Int

    init(maxSessions: Int) {
        self.maxSessions = maxSessions
    }

    /// A new, unguessable client id: ``idLength`` characters from `A-Z a-z 0-9` (about 190 bits from the system's
    /// secure generator).
    static func makeClientID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<Self.idLength).map { _ in
            alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))]
        }, as: UTF8.self)
    }

    /// Registers a session under `id` (made by ``makeClientID()``); false when the node holds ``maxSessions``
    /// already.
    func insert(_ id: String, _ handle: Handle) -> Bool {
        guard let key = Key(id) else { preconditionFailure("not a client id made by makeClientID()") }
        return self.table.withLockedValue { table in
            guard table.count < self.maxSessions else { return false }
            table[key] = handle
            return true
        }
    }

    func lookup(_ id: String) -> Handle? {
        guard let key = Key(id) else { return nil }
        return self.table.withLockedValue { $0[key] }
    }

    func remove(_ id: String) {
        guard let key = Key(id) else { return }
        self.table.withLockedValue { _ = $0.removeValue(forKey: key) }
    }

    var count: Int { self.table.withLockedValue { $0.count } }

    /// Every session (a graceful shutdown answers their held connects).
    var all: [Handle] { self.table.withLockedValue { Array($0.values) } }
}
