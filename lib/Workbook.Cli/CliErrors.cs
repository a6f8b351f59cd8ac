using Workbook.Checkpoints;
using Workbook.Model;

namespace Workbook.Cli;

/// <summary>Turns exceptions into one clear line on stderr and an exit code.</summary>
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
            _ => $"{e.GetType().Name}: {e.Message}",
        };
        error.WriteLine($"error: {message}");
        if (Environment.GetEnvironmentVariable("WORKBOOK_DEBUG") == "1") error.WriteLine(e);
        return Failure;
    }
}
