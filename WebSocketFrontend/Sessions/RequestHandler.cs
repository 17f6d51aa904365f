using System.Text;
using System.Text.Json;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>The actions of PROTOCOL.md: each turns a request into grain calls and one reply frame.</summary>
public sealed partial class RequestHandler(
    IGrainFactory grains,
    ReplyWriter replies,
    FrontendIdentity frontend,
    IOptions<ProtocolOptions> options,
    ILogger<RequestHandler> logger)
{
    /// <summary>Length of every token <see cref="TokenDigest.NewToken"/> makes; anything else cannot be one.</summary>
    private const int TokenLength = 43;

    private readonly ProtocolOptions _options = options.Value;

    /// <summary>Answers one request. Every failure becomes an <c>error</c> reply; nothing here closes the socket.</summary>
    public async Task<byte[]> HandleAsync(WebSocketSession session, ClientRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return request.Action switch
            {
                "register" => await RegisterAsync(request),
                "login" => await LoginAsync(session, request),
                "update" => await UpdateAsync(request),
                "logout" => await LogoutAsync(session, request),
                "ping" => replies.Write("pinged", request.RequestIdJson),
                _ => throw new ProtocolException(ErrorCodes.UnknownAction, $"Unknown action '{request.Action}'."),
            };
        }
        catch (ProtocolException ex)
        {
            return replies.Error(ex.Code, ex.Message, request.Action, request.RequestIdJson);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Grain calls fail only for infrastructure reasons (storage, cluster, timeouts): the
            // request changed nothing it could not undo, and the client may retry.
            LogUnavailable(logger, ex, request.Action);
            return replies.Error(ErrorCodes.Unavailable, "Storage or cluster unavailable; nothing was changed, retry later.", request.Action, request.RequestIdJson);
        }
    }

    /// <summary>Takes a closed socket's session out of the online directory.</summary>
    public async Task OnSessionEndedAsync(WebSocketSession session)
    {
        if (session.ClientId is null)
        {
            return;
        }

        try
        {
            await OnlineDirectory.For(grains, session.Id).Remove(session.Id);
            session.ClientId = null;
        }
        catch (Exception ex)
        {
            LogDirectoryCleanupFailed(logger, ex, session.Id);
        }
    }

    private async Task<byte[]> RegisterAsync(ClientRequest request)
    {
        var information = ReadInformation(request.Parameters);
        var token = TokenDigest.NewToken();
        var id = await grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Register(information);
        return replies.Write("registered", request.RequestIdJson, (token, id), static (w, s) =>
        {
            w.WriteString("token"u8, s.token);
            w.WriteNumber("id"u8, s.id);
        });
    }

    private async Task<byte[]> LoginAsync(WebSocketSession session, ClientRequest request)
    {
        var client = await AuthenticateAsync(request.Parameters);
        await OnlineDirectory.For(grains, session.Id).Add(new OnlineEntry(session.Id, client.Id, frontend.Id));
        session.ClientId = client.Id;
        return replies.Write("logged", request.RequestIdJson, client, static (w, c) =>
        {
            w.WriteStartArray("queue"u8);
            w.WriteEndArray();
            w.WriteNumber("id"u8, c.Id);

            // Extension: the stored information, so a client that lost its own copy gets it back.
            w.WritePropertyName("information"u8);
            w.WriteRawValue(c.Information.Json, skipInputValidation: true);
        });
    }

    private async Task<byte[]> UpdateAsync(ClientRequest request)
    {
        var token = ReadToken(request.Parameters);
        var information = ReadInformation(request.Parameters);
        _ = await grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Update(information)
            ?? throw InvalidToken();
        return replies.Write("updated", request.RequestIdJson);
    }

    private async Task<byte[]> LogoutAsync(WebSocketSession session, ClientRequest request)
    {
        if (session.ClientId is null)
        {
            throw new ProtocolException(ErrorCodes.NotLoggedIn, "This socket is not logged in.");
        }

        await OnlineDirectory.For(grains, session.Id).Remove(session.Id);
        session.ClientId = null;
        return replies.Write("loggedOut", request.RequestIdJson, 0, static (w, _) => w.WriteString("reason"u8, "logout"));
    }

    private async Task<ClientSnapshot> AuthenticateAsync(JsonElement parameters)
    {
        var token = ReadToken(parameters);
        return await grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Get() ?? throw InvalidToken();
    }

    private static string ReadToken(JsonElement parameters)
    {
        var token = Json.RequireString(parameters, "token");

        // A string that cannot be a token is refused without waking a grain for it.
        return token.Length == TokenLength ? token : throw InvalidToken();
    }

    private static ProtocolException InvalidToken() =>
        new(ErrorCodes.InvalidToken, "The token does not belong to a registered client.");

    private ClientInformation ReadInformation(JsonElement parameters)
    {
        var information = Json.RequireObject(parameters, "information");
        var json = information.GetRawText();
        if (Encoding.UTF8.GetByteCount(json) > _options.MaxInformationBytes)
        {
            throw ProtocolException.TooLarge($"'information' is larger than {_options.MaxInformationBytes} bytes.");
        }

        return new ClientInformation(json, OptionalText(information, "name"), OptionalText(information, "location"));
    }

    private string? OptionalText(JsonElement information, string name)
    {
        if (!Json.TryGetProperty(information, name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw ProtocolException.BadRequest($"'information.{name}' must be a string.");
        }

        var text = value.GetString()!;
        return text.Length <= _options.MaxTextFieldLength
            ? text
            : throw ProtocolException.TooLarge($"'information.{name}' is longer than {_options.MaxTextFieldLength} characters.");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ClientRequest '{Action}' failed on storage or cluster; answered 'unavailable'")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string action);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove socket {ConnectionId} from the online directory")]
    private static partial void LogDirectoryCleanupFailed(ILogger logger, Exception exception, string connectionId);
}
