using Workbook.Cli;

return WorkbookCli.Run(args, Console.Out, Console.Error);
