using System.Buffers;
using System.Text.Json;

namespace Benchmarks;

/// <summary>Writes request envelopes the way PROTOCOL.md shapes them, into a reused buffer.</summary>
internal static class RequestEnvelope
{
    /// <summary>The envelope of a <c>/ws</c> frame, or with <paramref name="socketIo"/> the Socket.IO event that carries the same body.</summary>
    public static ReadOnlyMemory<byte> Write<TState>(
        ArrayBufferWriter<byte> buffer, string action, int requestId, TState state, Action<Utf8JsonWriter, TState> parameters, bool socketIo = false)
    {
        buffer.ResetWrittenCount();
        if (socketIo)
        {
            SocketIoFraming.WriteStart(buffer);
        }

        using var writer = new Utf8JsonWriter(buffer);
        writer.WriteStartObject();
        if (!socketIo)
        {
            writer.WriteString("event"u8, "client.to.instance"u8);
            writer.WriteStartObject("body"u8);
        }

        writer.WriteString("action"u8, action);
        writer.WriteNumber("requestId"u8, requestId);
        writer.WriteStartObject("parameters"u8);
        parameters(writer, state);
        writer.WriteEndObject();
        writer.WriteEndObject();
        if (socketIo)
        {
            writer.Flush();
            SocketIoFraming.WriteEnd(buffer);
        }
        else
        {
            writer.WriteEndObject();
            writer.Flush();
        }

        return buffer.WrittenMemory;
    }
}
