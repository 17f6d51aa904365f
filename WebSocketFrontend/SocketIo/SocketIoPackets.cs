using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace WebSocketFrontend.SocketIo;

/// <summary>One application event a client emitted on the namespace <c>/</c>.</summary>
/// <param name="Name">The event name.</param>
/// <param name="Argument">The first argument as raw UTF-8 JSON (empty when the event had none).</param>
/// <param name="ArgumentCount">How many arguments followed the name.</param>
/// <param name="AckId">The acknowledgement id when the client asked for one; the answer goes through <see cref="SocketIoPackets.Ack{TState}"/>.</param>
/// <param name="IsBinary">
/// A binary event or a binary acknowledgement: its attachments were read and dropped, the arguments hold their
/// placeholders, and a binary acknowledgement has an empty <paramref name="Name"/>.
/// </param>
public readonly record struct SocketIoEvent(string Name, ReadOnlyMemory<byte> Argument, int ArgumentCount, long? AckId, bool IsBinary);

/// <summary>
/// Encodes the packets a server sends on the namespace <c>/</c>, as Engine.IO message text
/// (<c>42["event",arg]</c>, <c>43id[arg]</c>) in UTF-8, ready for <see cref="SocketIoConnection.TrySend"/>.
/// </summary>
public static class SocketIoPackets
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <summary>An event with one argument, which <paramref name="writeArgument"/> writes as a single JSON value.</summary>
    public static byte[] Event<TState>(string name, TState state, Action<Utf8JsonWriter, TState> writeArgument)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(writeArgument);
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write("42"u8);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(name);
            writeArgument(writer, state);
            writer.WriteEndArray();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The acknowledgement of the event with <paramref name="ackId"/>, with one argument that <paramref name="writeArgument"/> writes.</summary>
    public static byte[] Ack<TState>(long ackId, TState state, Action<Utf8JsonWriter, TState> writeArgument)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ackId);
        ArgumentNullException.ThrowIfNull(writeArgument);
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write("43"u8);
        Span<byte> digits = stackalloc byte[20];
        ackId.TryFormat(digits, out var length, default, CultureInfo.InvariantCulture);
        buffer.Write(digits[..length]);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartArray();
            writeArgument(writer, state);
            writer.WriteEndArray();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Whether <paramref name="packet"/> is Engine.IO message text carrying a Socket.IO event or acknowledgement on <c>/</c>.</summary>
    internal static bool IsEventOrAck(ReadOnlySpan<byte> packet) =>
        packet.Length >= 3 && packet[0] == (byte)'4' && (packet[1] == (byte)'2' || packet[1] == (byte)'3');

    internal static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}

/// <summary>A Socket.IO packet as the client sent it (the text after Engine.IO's <c>4</c>).</summary>
internal readonly record struct SocketIoPacket(int Type, int Attachments, string Namespace, long? Id, ReadOnlyMemory<byte> Data)
{
    public const int Connect = 0, Disconnect = 1, Event = 2, Ack = 3, ConnectError = 4, BinaryEvent = 5, BinaryAck = 6;

    private const int MaxIdDigits = 15;

    /// <summary>Parses <c>type[attachments-][/nsp,][id][json]</c>; false when the header is malformed.</summary>
    public static bool TryParse(ReadOnlyMemory<byte> text, out SocketIoPacket packet)
    {
        packet = default;
        var span = text.Span;
        if (span.Length == 0 || span[0] < (byte)'0' || span[0] > (byte)'6')
        {
            return false;
        }

        var type = span[0] - '0';
        var i = 1;
        var attachments = 0;
        if (type is BinaryEvent or BinaryAck)
        {
            var start = i;
            while (i < span.Length && char.IsAsciiDigit((char)span[i]) && i - start < 6)
            {
                attachments = (attachments * 10) + (span[i] - '0');
                i++;
            }

            if (i == start || i >= span.Length || span[i] != (byte)'-')
            {
                return false;
            }

            i++;
        }

        var nsp = "/";
        if (i < span.Length && span[i] == (byte)'/')
        {
            var end = span[i..].IndexOf((byte)',');
            var raw = end < 0 ? span[i..] : span.Slice(i, end);
            i = end < 0 ? span.Length : i + end + 1;
            var query = raw.IndexOf((byte)'?');
            if (query >= 0)
            {
                raw = raw[..query];
            }

            nsp = Encoding.UTF8.GetString(raw);
        }

        long? id = null;
        var digitsStart = i;
        long value = 0;
        while (i < span.Length && char.IsAsciiDigit((char)span[i]))
        {
            if (i - digitsStart >= MaxIdDigits)
            {
                return false;
            }

            value = (value * 10) + (span[i] - '0');
            i++;
        }

        if (i > digitsStart)
        {
            id = value;
        }

        packet = new SocketIoPacket(type, attachments, nsp, id, text[i..]);
        return true;
    }

    /// <summary>
    /// Reads an event's or acknowledgement's JSON array: the name (events) and the first argument's raw text;
    /// false when the data is not such an array.
    /// </summary>
    public bool TryReadArguments(bool named, out string name, out ReadOnlyMemory<byte> first, out int count)
    {
        name = string.Empty;
        first = default;
        count = 0;
        if (Data.IsEmpty)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(Data.Span, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            {
                return false;
            }

            if (named)
            {
                if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                {
                    return false;
                }

                name = reader.GetString()!;
            }

            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                if (count == 0)
                {
                    first = Data[start..(int)reader.BytesConsumed];
                }

                count++;
            }

            if (reader.TokenType != JsonTokenType.EndArray)
            {
                return false;
            }

            // Anything after the array is malformed; the reader throws on it.
            while (reader.Read())
            {
            }

            return true;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Whether the data is empty or one JSON object (a CONNECT's optional auth payload).</summary>
    public bool HasObjectOrNoData()
    {
        if (Data.IsEmpty)
        {
            return true;
        }

        try
        {
            var reader = new Utf8JsonReader(Data.Span, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            reader.Skip();
            while (reader.Read())
            {
            }

            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
