import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the file descriptor under a NIO TCP socket channel, for ``ConnectionWriter``'s direct writes.
///
/// NIO does not expose a channel's descriptor, but its socket channels name it in their description
/// (`SocketChannel { BaseSocket { fd=N }, ... }`). ``of(_:)`` reads it there and then proves it: the descriptor's own
/// local and peer addresses (`getsockname`, `getpeername`) must equal the channel's, and a TCP connection's pair of
/// addresses is unique in the process. Anything else (another kind of channel, a description NIO changed, a Unix
/// socket, a mismatch) gives nil, and the connection writes through NIO only.
enum SocketDescriptor {
    /// The descriptor of `channel`'s connected TCP socket, or nil. Call on the channel's event loop, once it is active.
    static func of(_ channel: any Channel) -> CInt? {
        guard let local = channel.localAddress, let remote = channel.remoteAddress else { return nil }
        guard let descriptor = Self.parse(String(describing: channel)) else { return nil }
        guard Self.address(of: descriptor, peer: false, equals: local),
              Self.address(of: descriptor, peer: true, equals: remote)
        else { return nil }
        return descriptor
    }

    /// The number after `fd=` in a NIO socket channel's description, or nil.
    static func parse(_ description: String) -> CInt? {
        let bytes = Array(description.utf8)
        let prefix = Array("SocketChannel { BaseSocket { fd=".utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        var value: CInt = 0
        var digits = 0
        for byte in bytes[prefix.count...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            guard digits < 9 else { return nil }
            value = value * 10 + CInt(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// Whether the socket `descriptor`'s local (or peer) address is `address` (IPv4 or IPv6 only).
    private static func address(of descriptor: CInt, peer: Bool, equals address: SocketAddress) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
            }
        }
        guard status == 0 else { return false }
        // NIO's equality compares family, port and address bytes (not the host name).
        switch (Int32(storage.ss_family), address) {
        case (AF_INET, .v4):
            let actual = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) }
            return SocketAddress(actual, host: "") == address
        case (AF_INET6, .v6):
            let actual = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
            return SocketAddress(actual, host: "") == address
        default:
            return false
        }
    }
}
