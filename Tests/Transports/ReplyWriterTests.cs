using System.Text;
using System.Text.Json;
using WebSocketFrontend.Protocol;

namespace Tests.Transports;

/// <summary>
/// The frames <see cref="ReplyWriter"/> writes through the buffer and JSON writer it keeps per thread: each frame is
/// whole and its own, whatever was written before it, inside it, or failed halfway.
/// </summary>
public sealed class ReplyWriterTests
{
    private static readonly ReplyWriter Writer = new(new EnvelopeFormat("instace.to.client"));

    [Fact]
    public void FramesWrittenOneAfterAnotherAreEachWholeAndTheLaterOneChangesNoEarlierOne()
    {
        var first = Writer.Write("response", "7", "first payload, the longer one", static (w, s) => w.WriteString("text"u8, s));
        var copy = first.ToArray();
        var second = Writer.Write("pinged", null);

        Assert.Equal(copy, first);
        Assert.Equal("""{"event":"instace.to.client","body":{"action":"response","requestId":7,"parameters":{"text":"first payload, the longer one"}}}""", Text(first));
        Assert.Equal("""{"event":"instace.to.client","body":{"action":"pinged","parameters":{}}}""", Text(second));
    }

    [Fact]
    public void AFrameWrittenWhileAnotherIsBeingWrittenIsWholeAndSoIsTheOuterOne()
    {
        byte[]? inner = null;
        var outer = Writer.Write("response", null, 1, (w, s) =>
        {
            w.WriteNumber("seq"u8, s);
            inner = Writer.Write("loggedOut", null, "takeover", static (w2, r) => w2.WriteString("reason"u8, r));
            w.WriteNumber("after"u8, 2);
        });

        Assert.Equal("""{"event":"instace.to.client","body":{"action":"response","parameters":{"seq":1,"after":2}}}""", Text(outer));
        Assert.Equal("""{"event":"instace.to.client","body":{"action":"loggedOut","parameters":{"reason":"takeover"}}}""", Text(inner!));
    }

    [Fact]
    public void AFrameLargerThanTheKeptBufferIsWholeAndSoAreTheSmallFramesAfterIt()
    {
        var big = new string('x', 200_000);
        var large = Writer.Write("response", null, big, static (w, s) => w.WriteString("text"u8, s));
        var small = Writer.Write("pinged", "\"p\"");

        using (var document = JsonDocument.Parse(large))
        {
            Assert.Equal(big, document.RootElement.GetProperty("body").GetProperty("parameters").GetProperty("text").GetString());
        }

        Assert.Equal("""{"event":"instace.to.client","body":{"action":"pinged","requestId":"p","parameters":{}}}""", Text(small));
    }

    [Fact]
    public void AFrameWhoseParametersFailHalfwayLeavesNothingBehindInTheNextFrame()
    {
        Assert.Throws<InvalidOperationException>(() => Writer.Write("response", "1", 0, static (w, _) =>
        {
            w.WriteStartArray("half"u8);
            w.WriteStringValue("left open");
            throw new InvalidOperationException("the parameters could not be written");
        }));

        var next = Writer.Error("bad_request", "no", "send", "2");

        Assert.Equal("""{"event":"instace.to.client","body":{"action":"error","requestId":2,"parameters":{"code":"bad_request","message":"no","request":"send"}}}""", Text(next));
    }

    [Fact]
    public async Task FramesWrittenOnManyThreadsAtOnceAreEachTheirOwn()
    {
        var ct = TestContext.Current.CancellationToken;
        var writers = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                var frame = Writer.Write("response", null, (t, i), static (w, s) =>
                {
                    w.WriteNumber("thread"u8, s.t);
                    w.WriteString("text"u8, new string('y', s.i % 97));
                    w.WriteNumber("i"u8, s.i);
                });
                Assert.Equal(
                    $$"""{"event":"instace.to.client","body":{"action":"response","parameters":{"thread":{{t}},"text":"{{new string('y', i % 97)}}","i":{{i}}""" + "}}}",
                    Text(frame));
            }
        }, ct));

        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(1), ct);
    }

    private static string Text(byte[] frame) => Encoding.UTF8.GetString(frame);
}
