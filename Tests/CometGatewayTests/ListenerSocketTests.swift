import CometTestSupport
import Foundation
import Testing

@testable import CometGateway

#if canImport(Glibc)
import Glibc

/// The sockets the listeners accept: their options, which the gateway sets once on the listening socket (inherited on
/// Linux) rather than per connection.
@Suite("Accepted sockets")
struct ListenerSocketTests {
    @Test("A connection the public listener accepted has TCP_NODELAY on")
    func acceptedSocketHasNoDelay() async throws {
        try await LiveGateway.withGateway { live in
            // A plain client socket: its local port identifies the gateway's side of the connection.
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(client >= 0)
            defer { close(client) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(live.publicPort).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            let clientPort = Self.port(of: client, peer: false)

            // The gateway runs in this process: find its descriptor for this connection (its peer is the client).
            var serverSide: CInt?
            for _ in 0..<200 where serverSide == nil {
                serverSide = (3..<4096).first { fd in
                    Self.port(of: fd, peer: true) == clientPort && Self.port(of: fd, peer: false) == live.publicPort
                }
                if serverSide == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let fd = try #require(serverSide, "the gateway accepted the connection")
            var value: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            #expect(getsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0)
            #expect(value != 0)
        }
    }

    /// The local (or peer) TCP port of `fd`, or nil when it is not a connected IPv4 socket.
    private static func port(of fd: CInt, peer: Bool) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
        }
        guard status == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
#endif
