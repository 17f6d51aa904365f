namespace WebSocketFrontend.Edge;

/// <summary>
/// A request Kestrel gives up on while the application reads it (a body too slow, 408, or too large,
/// 413) is the client's fault, not the server's: it is answered with its status and logged on one
/// line at Debug, instead of an error with a stack trace for every such client.
/// </summary>
public sealed partial class ExpectedBadRequestMiddleware(RequestDelegate next, ILogger<ExpectedBadRequestMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex)
        {
            LogBadRequest(logger, ex.StatusCode, context.Request.Path, ex.Message);
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                context.Response.StatusCode = ex.StatusCode;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Bad request ({Status}) on {Path}: {Reason}")]
    private static partial void LogBadRequest(ILogger logger, int status, string path, string reason);
}
