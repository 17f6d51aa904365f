using System.Text.Json;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// <c>/api</c>: back ends post responses to clients by id and read a client's state; operators
/// list the online clients. Every route needs <c>Authorization: Bearer</c> with the admin key.
/// </summary>
public static class ApiEndpoints
{
    public static WebApplication MapClientApi(this WebApplication app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter(RequireAdminKey);
        api.MapPost("/clients/{id:int}/responses", PostResponseAsync);
        api.MapGet("/clients/{id:int}", GetClientAsync);
        api.MapGet("/online", GetOnlineAsync);
        api.MapGet("/clients/{id:int}/contacts", GetContactsAsync);
        api.MapPut("/clients/{id:int}/contacts/{other:int}", LinkAsync);
        api.MapDelete("/clients/{id:int}/contacts/{other:int}", UnlinkAsync);
        api.MapPost("/clients/{id:int}/revoke", RevokeAsync);
        api.MapPost("/clients/{id:int}/token", IssueTokenAsync);
        return app;
    }

    private static async ValueTask<object?> RequireAdminKey(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var options = context.HttpContext.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
        if (string.IsNullOrEmpty(options.AdminKey))
        {
            return Results.NotFound();
        }

        if (!options.IsPresentedBy(context.HttpContext.Request))
        {
            context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
            return Error(StatusCodes.Status401Unauthorized, "unauthorized", "A valid 'Authorization: Bearer <admin key>' header is required.");
        }

        return await next(context);
    }

    private static async Task<IResult> PostResponseAsync(int id, HttpRequest request, IGrainFactory grains, IOptions<ProtocolOptions> options, GatewayMetrics metrics)
    {
        var limit = options.Value.MaxPayloadBytes;
        var body = await ReadBodyAsync(request, limit);
        if (body is null)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.TooLarge, $"The payload is larger than {limit} bytes.");
        }

        string payload;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestParser.MaxDepth, AllowDuplicateProperties = false });
            payload = document.RootElement.GetRawText();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // The duplicate-name check throws InvalidOperationException for a name that is a lone surrogate.
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"The body is not a JSON document: {ex.Message}");
        }

        if (!UnicodeText.AllStringsValid(body))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, "A string in the body is not valid Unicode text (a lone UTF-16 surrogate).");
        }

        return await GuardAsync(async () =>
        {
            var result = id > 0 ? await grains.Grain<IClientIdGrain>(id).Send(null, payload) : new SendResult(SendStatus.NotFound, 0);
            metrics.CountSent(result);
            if (SendOutcome.ErrorOf(result, id) is { } refused)
            {
                return Error(refused.Code == ErrorCodes.QueueFull ? StatusCodes.Status409Conflict : StatusCodes.Status404NotFound, refused.Code, refused.Message);
            }

            return Results.Json(new { seq = result.Seq, delivered = SendOutcome.Delivered(result) }, statusCode: StatusCodes.Status202Accepted);
        });
    }

    private static Task<IResult> GetClientAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        var mailbox = grains.Grain<IClientIdGrain>(id);
        var digest = id > 0 ? await mailbox.GetDigest() : null;
        var client = digest is null ? null : await grains.Grain<IClientGrain>(digest).Read();
        if (client is null)
        {
            return Error(StatusCodes.Status404NotFound, ErrorCodes.NotFound, $"No client has id {id}.");
        }

        var status = await mailbox.Status();
        return Results.Json(new
        {
            id = client.Id,
            information = StoredInformation(client.Information.Json),
            name = UnicodeText.SanitizeText(client.Information.Name),
            location = UnicodeText.SanitizeText(client.Information.Location),
            createdAt = client.CreatedAt,
            updatedAt = client.UpdatedAt,
            online = status.Online,
            queueLength = status.QueueLength,
            queueBytes = status.QueueBytes,
        });
    });

    private static Task<IResult> GetOnlineAsync(IGrainFactory grains, IOptions<ProtocolOptions> options, long? after, int? limit) => GuardAsync(async () =>
    {
        var max = options.Value.MaxOnlinePage;
        if (limit is < 1 || limit > max)
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.BadRequest, $"'limit' must be between 1 and {max}.");
        }

        var page = OnlinePage.Of(await OnlineDirectory.OnlineClientIdsAsync(grains), after ?? 0, limit ?? max);
        return Results.Json(new { clients = page.Clients, next = page.Next });
    });

    private static Task<IResult> GetContactsAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
        (id > 0 ? await grains.Grain<IClientIdGrain>(id).Contacts() : null) is { } contacts
            ? Results.Json(new { id, contacts })
            : ClientNotFound(id));

    /// <summary>
    /// Links two clients both ways: each may send to the other. Two writes, one per client; a failure
    /// between them leaves a one-way link that a retry completes.
    /// </summary>
    private static Task<IResult> LinkAsync(int id, int other, IGrainFactory grains) => GuardAsync(async () =>
    {
        if (id <= 0 || other <= 0)
        {
            return ClientNotFound(id <= 0 ? id : other);
        }

        var first = await grains.Grain<IClientIdGrain>(id).AddContact(other);
        var second = first == ContactChange.Done ? await grains.Grain<IClientIdGrain>(other).AddContact(id) : first;
        if (first == ContactChange.Done && second != ContactChange.Done)
        {
            await grains.Grain<IClientIdGrain>(id).RemoveContact(other);
        }

        return second switch
        {
            ContactChange.Done => Results.NoContent(),
            ContactChange.NotFound => ClientNotFound(first == ContactChange.NotFound ? id : other),
            _ => Error(StatusCodes.Status409Conflict, ErrorCodes.TooLarge, "A client of the pair has as many contacts as it may."),
        };
    });

    /// <summary>Unlinks two clients both ways; the other id may be a client deleted since.</summary>
    private static Task<IResult> UnlinkAsync(int id, int other, IGrainFactory grains) => GuardAsync(async () =>
    {
        if (id <= 0 || await grains.Grain<IClientIdGrain>(id).RemoveContact(other) == ContactChange.NotFound)
        {
            return ClientNotFound(id);
        }

        if (other > 0)
        {
            await grains.Grain<IClientIdGrain>(other).RemoveContact(id);
        }

        return Results.NoContent();
    });

    /// <summary>Kills the client's token: the client keeps its id, information and queue, and its sessions hear <c>revoked</c>.</summary>
    private static Task<IResult> RevokeAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
        await ReplaceTokenAsync(id, grains, TokenDigest.NewToken()) ? Results.NoContent() : ClientNotFound(id));

    /// <summary>Issues the client a new token, shown once; the old one dies and its sessions hear <c>revoked</c>.</summary>
    private static Task<IResult> IssueTokenAsync(int id, IGrainFactory grains) => GuardAsync(async () =>
    {
        var token = TokenDigest.NewToken();
        return await ReplaceTokenAsync(id, grains, token) ? Results.Json(new { id, token }) : ClientNotFound(id);
    });

    /// <summary>Moves client <paramref name="id"/> to <paramref name="token"/>; false when no client has the id.</summary>
    private static async Task<bool> ReplaceTokenAsync(int id, IGrainFactory grains, string token)
    {
        // The index may move under us (the client rotating at the same moment): read it again, a bounded number of times.
        for (var attempt = 0; attempt < 3 && id > 0; attempt++)
        {
            if (await grains.Grain<IClientIdGrain>(id).GetDigest() is not { } digest)
            {
                return false;
            }

            if (await grains.Grain<IClientGrain>(digest).Rotate(TokenDigest.Of(token), keepSessionId: null, evenIfExpired: true) is not null)
            {
                return true;
            }
        }

        return false;
    }

    private static IResult ClientNotFound(int id) => Error(StatusCodes.Status404NotFound, ErrorCodes.NotFound, $"No client has id {id}.");

    /// <summary>
    /// The stored information as a JSON value. A row stored before strings were checked may hold a lone
    /// surrogate, which the serializer refuses to write: it is replaced by U+FFFD, and text that is no JSON
    /// at all reads as null, so one bad row never turns the route into a 500.
    /// </summary>
    private static JsonElement? StoredInformation(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(UnicodeText.SanitizeJson(json));
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Storage or cluster failures answer 503 <c>unavailable</c>; the caller may retry.</summary>
    private static async Task<IResult> GuardAsync(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.Unavailable, SendOutcome.UnavailableMessage);
        }
    }

    /// <summary>The body, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static IResult Error(int status, string code, string message) =>
        Results.Json(new { code, message }, statusCode: status);
}
