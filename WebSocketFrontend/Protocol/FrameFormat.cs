using System.Buffers;
using System.Text.Json;

namespace WebSocketFrontend.Protocol;

/// <summary>
/// How a transport wraps a message body (<c>{"action", "requestId", "parameters"}</c>) into one frame. The body is
/// written once, straight into the frame's buffer, between what <see cref="WriteStart"/> and <see cref="WriteEnd"/> write.
/// </summary>
/// <remarks>
/// <c>context</c> is the transport context of the request a reply answers (an acknowledgement id, say), or null for
/// a push and for a request that carried none: a format may route a reply differently from an event with it.
/// </remarks>
public abstract class FrameFormat
{
    /// <summary>Writes what goes before the body object.</summary>
    public abstract void WriteStart(IBufferWriter<byte> buffer, object? context);

    /// <summary>Writes what goes after the body object.</summary>
    public abstract void WriteEnd(IBufferWriter<byte> buffer, object? context);
}

/// <summary>The raw <c>/ws</c> envelope: <c>{"event": E, "body": {…}}</c>, with E the reply event.</summary>
public sealed class EnvelopeFormat : FrameFormat
{
    private readonly byte[] _start;

    public EnvelopeFormat(string replyEvent)
    {
        // Written by the JSON writer itself, so the event name is escaped exactly as any other string.
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("event"u8, replyEvent);
            writer.WritePropertyName("body"u8);
            writer.Flush();
        }

        _start = buffer.WrittenSpan.ToArray();
    }

    public override void WriteStart(IBufferWriter<byte> buffer, object? context) => buffer.Write(_start);

    public override void WriteEnd(IBufferWriter<byte> buffer, object? context) => buffer.Write("}"u8);
}
