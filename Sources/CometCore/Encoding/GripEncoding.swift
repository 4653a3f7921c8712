import NIOCore

/// Framing of what GRIP holds write.
public enum GripEncoding {
    /// `content` as one HTTP chunk; an empty buffer for empty content (an empty chunk would end the body).
    public static func chunk(_ content: ByteBuffer) -> ByteBuffer {
        guard content.readableBytes > 0 else { return ByteBuffer() }
        var chunk = ByteBuffer()
        chunk.reserveCapacity(content.readableBytes + 12)
        IframeEncoding.writeChunk(content, into: &chunk)
        return chunk
    }

    /// `bytes` as one HTTP chunk, or as they are on an unframed (HTTP/1.0) stream.
    public static func frame(_ bytes: [UInt8], chunked: Bool) -> ByteBuffer {
        let content = ByteBuffer(bytes: bytes)
        return chunked ? Self.chunk(content) : content
    }
}
