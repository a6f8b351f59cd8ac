using Workbook.Checkpoints;
using Workbook.Model;

namespace Workbook.Cli;

/// <summary>
/// Turns exceptions into one clear line on stderr and an exit code. The line is made safe to print: secrets (a
/// password in HF_ENDPOINT, the HF_TOKEN) are removed and control characters from names, paths or file contents escaped;
/// a native (libtorch) error keeps its first line, not its backtrace.
/// </summary>
public static class CliErrors
{
    public const int Failure = 1;

    public static int Report(Exception e, TextWriter error)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        string message = e switch
        {
            CheckpointException or CudaUnavailableException or Tokenization.TokenizerException => e.Message,
            ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException => e.Message,
            FileNotFoundException f => $"File not found: {f.FileName ?? f.Message}",
            DirectoryNotFoundException or IOException or UnauthorizedAccessException => e.Message,
            System.Text.Json.JsonException => $"Invalid JSON: {e.Message}",
            System.Runtime.InteropServices.ExternalException => $"libtorch: {FirstLine(e.Message)}",
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        error.WriteLine($"error: {Printable(message)}");
        if (Environment.GetEnvironmentVariable("WORKBOOK_DEBUG") == "1") error.WriteLine(e);
        return Failure;
    }

    /// <summary>Text fit for the terminal: secrets from the environment redacted, control characters escaped.</summary>
    public static string Printable(string text)
    {
        try
        {
            text = Hub.HubOptions.FromEnvironment().Redact(text);
        }
        catch (ArgumentException)
        {
            // A malformed variable is reported by whatever reads it; redaction of the endpoint still needs no more.
        }
        return Util.ControlCharacters.Escape(text);
    }

    static string FirstLine(string text)
    {
        int end = text.IndexOfAny(new[] { '\r', '\n' });
        return end < 0 ? text : text[..end];
    }
}
