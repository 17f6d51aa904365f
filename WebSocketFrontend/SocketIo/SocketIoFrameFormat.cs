using System.Buffers;
using System.Globalization;
using System.Text.Json;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.SocketIo;

/// <summary>
/// The Socket.IO frame of a message body, as Engine.IO message text on the namespace <c>/</c>: the reply to a
/// request that asked for an acknowledgement is that acknowledgement, <c>43&lt;id&gt;[{…}]</c>; everything else
/// (pushes, <c>loggedOut</c>, the pages of a login after the first, replies to requests without one) is the reply
/// event, <c>42["instace.to.client",{…}]</c>.
/// </summary>
/// <remarks>The transport context is the acknowledgement id, a boxed <see cref="long"/>; see <see cref="SocketIoTransport"/>.</remarks>
public sealed class SocketIoFrameFormat : FrameFormat
{
    private readonly byte[] _eventStart;

    /// <param name="replyEvent">The event replies and pushes are emitted as (<see cref="ProtocolOptions.ReplyEvent"/>).</param>
    public SocketIoFrameFormat(string replyEvent)
    {
        // Written by the JSON writer itself, so the event name is escaped exactly as any other string.
        var buffer = new ArrayBufferWriter<byte>(64);
        buffer.Write("42"u8);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(replyEvent);
            writer.Flush();
        }

        buffer.Write(","u8);
        _eventStart = buffer.WrittenSpan.ToArray();
    }

    public override void WriteStart(IBufferWriter<byte> buffer, object? context)
    {
        if (context is long ackId)
        {
            var span = buffer.GetSpan(24);
            span[0] = (byte)'4';
            span[1] = (byte)'3';
            ackId.TryFormat(span[2..], out var digits, default, CultureInfo.InvariantCulture);
            span[2 + digits] = (byte)'[';
            buffer.Advance(3 + digits);
            return;
        }

        buffer.Write(_eventStart);
    }

    public override void WriteEnd(IBufferWriter<byte> buffer, object? context) => buffer.Write("]"u8);
}
