// Drives the system's Chromium (headless) to the MCP Apps host page and waits until the page
// says it is done (the view refreshed through the app-only tool and showed the data) or failed,
// at most 30 s; prints the page's results as JSON and keeps a screenshot.
// Usage: node run-host.mjs URL SCREENSHOT.png
import puppeteer from "puppeteer-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
});
let results = {};
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 800, height: 600 });
  await page.goto(url);
  await page
    .waitForFunction(
      () => {
        const t = document.getElementById("results").textContent;
        return t.includes('"done":true') || /"errors":\[[^\]]/.test(t);
      },
      { timeout: 30000 },
    )
    .catch(() => {});
  const text = await page.$eval("#results", (e) => e.textContent);
  results = JSON.parse(text.replace(/^RESULTS /, ""));
  await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
