/*
 * Related-stories box. Include once:
 *   <script src="https://RELATED-SERVICE/static/related.js" defer></script>
 * and place where the box goes:
 *   <div data-related-article="ARTICLE-ID" data-k="5"></div>
 * Options (data-* on the placeholder, as the JSON API's parameters): data-k, data-section,
 * data-source, data-since, data-until, data-exclude (ids separated by commas), data-stage,
 * data-method, data-diversity, data-min-score, data-freshness-days; data-link, a link pattern
 * with {id} (e.g. "/news/{id}") used instead of the stored URL; data-timeout in milliseconds
 * (default 3000). data-api on the script tag overrides the service address.
 * The placeholder's data-related-state becomes loading, loaded, empty, error or timeout; on
 * any failure it stays empty and the page is left as it was.
 */
(function () {
  "use strict";

  var OPTIONS = {
    k: "k", section: "section", source: "source", since: "since", until: "until",
    stage: "stage", method: "method", diversity: "diversity", minScore: "min_score",
    freshnessDays: "freshness_days"
  };
  var DEFAULT_TIMEOUT_MS = 3000;
  var script = document.currentScript;

  function serviceBase() {
    if (script && script.dataset.api) {
      return script.dataset.api.replace(/\/+$/, "");
    }
    if (script && script.src) {
      return new URL("..", script.src).href.replace(/\/+$/, "");
    }
    return "";
  }

  var base = serviceBase();

  function boxUrl(el) {
    var id = el.dataset.relatedArticle;
    var url = new URL(base + "/articles/" + encodeURIComponent(id) + "/related.html",
                      window.location.href);
    Object.keys(OPTIONS).forEach(function (key) {
      var value = el.dataset[key];
      if (value !== undefined && value !== "") {
        url.searchParams.set(OPTIONS[key], value);
      }
    });
    (el.dataset.exclude || "").split(",").forEach(function (other) {
      if (other.trim()) {
        url.searchParams.append("exclude", other.trim());
      }
    });
    return url.href;
  }

  function relink(el) {
    var pattern = el.dataset.link;
    if (!pattern) {
      return;
    }
    el.querySelectorAll(".related-stories__item").forEach(function (item) {
      var link = item.querySelector("a.related-stories__link");
      var href = pattern.replace("{id}", encodeURIComponent(item.dataset.articleId));
      if (link) {
        link.setAttribute("href", href);
      } else {
        var span = item.querySelector(".related-stories__link");
        if (span) {
          var a = document.createElement("a");
          a.className = span.className;
          a.setAttribute("href", href);
          a.textContent = span.textContent;
          span.replaceWith(a);
        }
      }
    });
  }

  function fill(el) {
    if (!el.dataset.relatedArticle || el.dataset.relatedState) {
      return Promise.resolve();
    }
    el.dataset.relatedState = "loading";
    var timeout = parseInt(el.dataset.timeout, 10) || DEFAULT_TIMEOUT_MS;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeout);
    return fetch(boxUrl(el), { signal: controller.signal, credentials: "omit" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var box = doc.querySelector("section.related-stories");
        if (!box) {
          el.dataset.relatedState = "empty";
          return;
        }
        el.replaceChildren(document.importNode(box, true));
        relink(el);
        el.dataset.relatedState = "loaded";
      })
      .catch(function (error) {
        el.dataset.relatedState = error && error.name === "AbortError" ? "timeout" : "error";
      })
      .finally(function () { clearTimeout(timer); });
  }

  function fillAll() {
    document.querySelectorAll("[data-related-article]").forEach(fill);
  }

  window.RelatedStories = { fill: fill, fillAll: fillAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fillAll);
  } else {
    fillAll();
  }
})();
