using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Benchmarks.Ceiling;

/// <summary>
/// The ceiling the gateway is measured against: a bare Kestrel WebSocket server on 127.0.0.1 that reads
/// each text frame, parses its envelope and answers with a reply of the protocol's shape, with no Orleans
/// and no storage. <c>register</c> answers <c>registered</c> with a fresh id and a token that names it;
/// <c>login</c> answers <c>logged</c> with the id its token names; <c>ping</c> answers <c>pinged</c>.
/// What the gateway does beyond this (grain calls, storage, the session's bookkeeping) is what the
/// product/ceiling ratio prices.
/// </summary>
public static class CeilingServer
{
    /// <summary>The same frame cap as the gateway's default.</summary>
    private const int MaxMessageBytes = 64 * 1024;

    private const string TokenPrefix = "ceiling-";

    private static int _lastId;

    /// <summary>Serves on 127.0.0.1:<paramref name="port"/> until <paramref name="cancellationToken"/> ends, or the process is stopped.</summary>
    public static async Task RunAsync(int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();

        // The same WebSocket options as the gateway, so that the two differ only in what they do per frame.
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.MapGet("/health", () => "ok");
        app.Map("/ws", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await ServeAsync(socket, context.RequestAborted);
        });
        await app.StartAsync(cancellationToken);
        await app.WaitForShutdownAsync(cancellationToken);
    }

    /// <summary>Answers every whole text frame in order until the peer closes.</summary>
    private static async Task ServeAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var frame = new ArrayBufferWriter<byte>(4096);
        var reply = new ArrayBufferWriter<byte>(256);
        try
        {
            while (true)
            {
                frame.ResetWrittenCount();
                ValueWebSocketReceiveResult received;
                do
                {
                    received = await socket.ReceiveAsync(frame.GetMemory(4096), cancellationToken);
                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                        return;
                    }

                    frame.Advance(received.Count);
                    if (frame.WrittenCount > MaxMessageBytes)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, "frame too large", cancellationToken);
                        return;
                    }
                }
                while (!received.EndOfMessage);

                reply.ResetWrittenCount();
                Answer(frame.WrittenSpan, reply);
                await socket.SendAsync(reply.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The peer went away; nothing to clean up beyond the socket.
        }
    }

    /// <summary>Writes the reply to one request envelope, or an <c>error</c> reply when it is not one.</summary>
    private static void Answer(ReadOnlySpan<byte> request, ArrayBufferWriter<byte> reply)
    {
        string? action = null;
        JsonElement requestId = default;
        JsonElement parameters = default;
        try
        {
            var reader = new Utf8JsonReader(request);
            using var document = JsonDocument.ParseValue(ref reader);
            var body = document.RootElement.GetProperty("body");
            action = body.GetProperty("action").GetString();
            requestId = body.TryGetProperty("requestId", out var id) ? id.Clone() : default;
            parameters = body.TryGetProperty("parameters", out var p) ? p.Clone() : default;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            Write(reply, "error", requestId, w => w.WriteString("code"u8, "invalid_json"));
            return;
        }

        switch (action)
        {
            case "register":
                var newId = Interlocked.Increment(ref _lastId);
                Write(reply, "registered", requestId, w =>
                {
                    w.WriteString("token"u8, TokenPrefix + newId.ToString(CultureInfo.InvariantCulture));
                    w.WriteNumber("id"u8, newId);
                });
                break;
            case "login" when TokenId(parameters) is { } loginId:
                Write(reply, "logged", requestId, w => w.WriteNumber("id"u8, loginId));
                break;
            case "login":
                Write(reply, "error", requestId, w => w.WriteString("code"u8, "unauthorized"));
                break;
            case "ping":
                Write(reply, "pinged", requestId, _ => { });
                break;
            default:
                Write(reply, "error", requestId, w => w.WriteString("code"u8, "unknown_action"));
                break;
        }
    }

    private static int? TokenId(JsonElement parameters) =>
        parameters.ValueKind == JsonValueKind.Object
        && parameters.TryGetProperty("token", out var token)
        && token.ValueKind == JsonValueKind.String
        && token.GetString() is { } text
        && text.StartsWith(TokenPrefix, StringComparison.Ordinal)
        && int.TryParse(text.AsSpan(TokenPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : null;

    private static void Write(ArrayBufferWriter<byte> buffer, string action, JsonElement requestId, Action<Utf8JsonWriter> parameters)
    {
        using var writer = new Utf8JsonWriter(buffer);
        writer.WriteStartObject();
        writer.WriteString("event"u8, "instace.to.client"u8);
        writer.WriteStartObject("body"u8);
        writer.WriteString("action"u8, action);
        if (requestId.ValueKind != JsonValueKind.Undefined)
        {
            writer.WritePropertyName("requestId"u8);
            requestId.WriteTo(writer);
        }

        writer.WriteStartObject("parameters"u8);
        parameters(writer);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
