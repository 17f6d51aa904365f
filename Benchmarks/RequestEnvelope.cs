using System.Buffers;
using System.Text.Json;

namespace Benchmarks;

/// <summary>Writes request envelopes the way PROTOCOL.md shapes them, into a reused buffer.</summary>
internal static class RequestEnvelope
{
    public static ReadOnlyMemory<byte> Write<TState>(ArrayBufferWriter<byte> buffer, string action, int requestId, TState state, Action<Utf8JsonWriter, TState> parameters)
    {
        buffer.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(buffer);
        writer.WriteStartObject();
        writer.WriteString("event"u8, "client.to.instance"u8);
        writer.WriteStartObject("body"u8);
        writer.WriteString("action"u8, action);
        writer.WriteNumber("requestId"u8, requestId);
        writer.WriteStartObject("parameters"u8);
        parameters(writer, state);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        return buffer.WrittenMemory;
    }
}
